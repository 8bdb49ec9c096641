"""The engine adapters' own logic, without an engine: error narrowing, no retries, request bodies.

A tiny HTTP server on 127.0.0.1 stands in for a node where the client libraries' real behaviour
matters (how often a request is sent, what a bulk answer turns into).
"""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Mapping

import elastic_transport
import elasticsearch
import numpy as np
import pytest
from opensearchpy import exceptions as os_exc

from engines import (
    ENGINE_KINDS,
    BulkOutcome,
    EngineRequestError,
    EngineUnavailable,
    HybridQuery,
    SearchEngine,
    connect,
    is_retryable_status,
)
from engines.elasticsearch import ElasticsearchEngine
from engines.opensearch import RRF_RANK_CONSTANT, OpenSearchEngine, OrjsonSerializer
from query_rewriter.blend import RRF_K

UNREACHABLE = "http://127.0.0.1:1"


def _es_api_error(cls: type[elasticsearch.ApiError], status: int) -> elasticsearch.ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status, http_version="1.1", headers=elastic_transport.HttpHeaders(), duration=0.0,
        node=elastic_transport.NodeConfig("http", "127.0.0.1", 9200),
    )
    return cls("refused", meta, {"error": {"type": "x"}, "status": status})


def test_retryable_statuses_are_429_and_5xx():
    assert [s for s in (200, 400, 404, 409, 429, 500, 503) if is_retryable_status(s)] == [429, 500, 503]
    assert BulkOutcome("1", "index", 429).retryable and not BulkOutcome("1", "index", 409).retryable


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_a_bug_is_not_an_outage(kind: str):
    engine = connect(kind, UNREACHABLE)
    with pytest.raises(TypeError, match="a bug"), engine._translated():
        raise TypeError("a bug")


@pytest.mark.parametrize(
    ("engine", "raised", "expected"),
    [
        (OpenSearchEngine(UNREACHABLE), os_exc.ConnectionError("N/A", "refused", None), EngineUnavailable),
        (OpenSearchEngine(UNREACHABLE), os_exc.ConnectionTimeout("TIMEOUT", "slow", None), EngineUnavailable),
        (OpenSearchEngine(UNREACHABLE), os_exc.TransportError(503, "busy", {}), EngineUnavailable),
        (OpenSearchEngine(UNREACHABLE), os_exc.TransportError(429, "too many", {}), EngineUnavailable),
        (OpenSearchEngine(UNREACHABLE), os_exc.NotFoundError(404, "index_not_found_exception", {}), EngineRequestError),
        (ElasticsearchEngine(UNREACHABLE), elastic_transport.ConnectionError("refused"), EngineUnavailable),
        (ElasticsearchEngine(UNREACHABLE), elastic_transport.ConnectionTimeout("slow"), EngineUnavailable),
        (ElasticsearchEngine(UNREACHABLE), _es_api_error(elasticsearch.ApiError, 503), EngineUnavailable),
        (ElasticsearchEngine(UNREACHABLE), _es_api_error(elasticsearch.NotFoundError, 404), EngineRequestError),
    ],
    ids=lambda value: type(value).__name__,
)
def test_transport_errors_and_answers_are_translated(engine: SearchEngine, raised: Exception, expected: type):
    with pytest.raises(expected) as caught, engine._translated():
        raise raised
    assert caught.value.__cause__ is raised
    if expected is EngineRequestError:
        assert caught.value.status == 404


@pytest.mark.parametrize(
    ("engine", "raised"),
    [
        (OpenSearchEngine(UNREACHABLE), os_exc.SerializationError("not JSON")),
        (ElasticsearchEngine(UNREACHABLE), elastic_transport.SerializationError("not JSON")),
    ],
    ids=["opensearch", "elasticsearch"],
)
def test_a_client_error_that_is_no_outage_propagates_unchanged(engine: SearchEngine, raised: Exception):
    with pytest.raises(type(raised)) as caught, engine._translated():
        raise raised
    assert caught.value is raised


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_a_refused_connection_is_unavailable(kind: str):
    with pytest.raises(EngineUnavailable, match="unreachable"):
        connect(kind, UNREACHABLE).refresh("products")


class FakeNode(BaseHTTPRequestHandler):
    """Answers every request with the class's canned (status, body) and counts the requests."""

    answer: tuple[int, Any] = (200, {})
    requests: list[str] = []
    bodies: list[bytes] = []

    def _reply(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        self.bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
        status, body = self.answer
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-elastic-product", "Elasticsearch")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def node() -> Iterator[type[FakeNode]]:
    handler = type("Node", (FakeNode,), {"requests": [], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_the_client_sends_a_busy_node_one_request(kind: str, node: type[FakeNode]):
    node.answer = (503, {"error": "busy", "status": 503})
    with pytest.raises(EngineUnavailable, match="503"):
        connect(kind, node.url).refresh("products")  # type: ignore[attr-defined]
    assert node.requests == ["POST /products/_refresh"]


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_a_429_bulk_item_comes_back_retryable_without_a_resend(kind: str, node: type[FakeNode]):
    items = [{"index": {"_id": "1", "status": 201}},
             {"index": {"_id": "2", "status": 429, "error": {"type": "es_rejected_execution_exception"}}}]
    node.answer = (200, {"took": 1, "errors": True, "items": items})
    actions = [{"_op_type": "index", "_index": "products", "_id": i, "title": "t"} for i in ("1", "2")]
    outcomes = connect(kind, node.url).bulk(actions)  # type: ignore[attr-defined]
    assert [(o.doc_id, o.ok, o.retryable) for o in outcomes] == [("1", True, False), ("2", False, True)]
    assert len(node.requests) == 1


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_msearch_writes_numpy_vectors_and_reads_the_answer_through_the_client(kind: str, node: type[FakeNode]):
    hit = {"_id": "7", "_score": 0.25, "_source": {"title": "Café Crème Kurta", "price": 1e-7}}
    node.answer = (200, {"responses": [{"hits": {"hits": [hit]}}]})
    vector = np.array([0.5, -0.25, 1 / 3], dtype=np.float32)
    bodies = [{"size": 1, "query": {"knn": {"vector": {"vector": vector, "k": np.int64(1)}}}}]
    answer = connect(kind, node.url).msearch("products", bodies)  # type: ignore[attr-defined]
    assert answer == [{"hits": {"hits": [hit]}}]
    header, body = [json.loads(line) for line in node.bodies[-1].decode().splitlines()]
    assert header == {"index": "products"}
    knn = body["query"]["knn"]["vector"]
    assert knn["k"] == 1
    # float32 written at float32 precision: the same numbers once the engine reads them as float32.
    assert np.array_equal(np.array(knn["vector"], dtype=np.float32), vector)


def test_opensearch_serializer_writes_what_json_cannot_and_refuses_the_rest():
    serializer = OrjsonSerializer()
    when = datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc)
    written = serializer.dumps({"at": when, "x": np.float32(0.5), "ids": np.arange(2), "text": "ü"})
    assert json.loads(written) == {"at": "2026-12-02T06:30:00+00:00", "x": 0.5, "ids": [0, 1], "text": "ü"}
    assert serializer.dumps("already json") == "already json"
    assert serializer.loads(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    with pytest.raises(os_exc.SerializationError):
        serializer.dumps({"x": object()})
    with pytest.raises(os_exc.SerializationError):
        serializer.loads(b"{not json")


def _captured(engine: OpenSearchEngine) -> list[tuple[str, str, Any]]:
    sent: list[tuple[str, str, Any]] = []

    def request(method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        sent.append((method, path, body))
        return {"hits": {"hits": []}}

    engine._request = request  # type: ignore[method-assign]
    return sent


def hybrid(method: str, weights: list[float]) -> HybridQuery:
    return HybridQuery(bm25_query={"match": {"title": "shoes"}}, vector_field="vector", vector=[1, 0.5, 0],
                       filters=[{"term": {"brand.keyword": "Nike"}}], depth=20, method=method, weights=weights,
                       source={"excludes": ["vector"]})


def test_server_hybrid_body_carries_both_legs_and_a_normalization_pipeline():
    engine = OpenSearchEngine(UNREACHABLE)
    sent = _captured(engine)
    engine.server_hybrid_search("products", hybrid("min_max", [1.0, 3.0]))
    assert sent == [("POST", "/products/_search", {
        "size": 20,
        "_source": {"excludes": ["vector"]},
        "query": {"hybrid": {"pagination_depth": 20, "queries": [
            {"match": {"title": "shoes"}},
            {"knn": {"vector": {"vector": [1.0, 0.5, 0.0], "k": 20,
                                "filter": {"bool": {"filter": [{"term": {"brand.keyword": "Nike"}}]}}}}},
        ]}},
        "search_pipeline": {"phase_results_processors": [{"normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.25, 0.75]}},
        }}]},
    })]


def test_server_hybrid_page_fetches_only_its_hits_but_blends_the_whole_window():
    engine = OpenSearchEngine(UNREACHABLE)
    sent = _captured(engine)
    engine.server_hybrid_search("products", replace(hybrid("min_max", [0.5, 0.5]), size=5))
    body = sent[0][2]
    assert (body["size"], body["query"]["hybrid"]["pagination_depth"]) == (5, 20)
    assert body["query"]["hybrid"]["queries"][1]["knn"]["vector"]["k"] == 20


def test_a_stored_pipeline_is_named_by_the_search_instead_of_sent():
    engine = OpenSearchEngine(UNREACHABLE)
    sent: list[tuple[str, str, Any, Any]] = []
    engine._request = lambda method, path, body=None, params=None: (  # type: ignore[method-assign]
        sent.append((method, path, body, params)) or {"hits": {"hits": []}})
    engine.put_hybrid_pipeline("blend-a", "min_max", [1.0, 3.0])
    engine.server_hybrid_search("products", hybrid("min_max", [1.0, 3.0]), pipeline="blend-a")
    engine.server_hybrid_search("products", hybrid("min_max", [1.0, 3.0]))
    (put, put_path, pipeline, _), (_, _, stored, params), (_, _, inline, _) = sent
    assert (put, put_path, params) == ("PUT", "/_search/pipeline/blend-a", {"search_pipeline": "blend-a"})
    assert pipeline == inline.pop("search_pipeline")
    assert stored == inline


def test_server_hybrid_rrf_uses_the_score_ranker_with_the_client_blends_k():
    engine = OpenSearchEngine(UNREACHABLE)
    sent = _captured(engine)
    engine.server_hybrid_search("products", hybrid("rrf", [0.5, 0.5]))
    assert sent[0][2]["search_pipeline"] == {"phase_results_processors": [{"score-ranker-processor": {
        "combination": {"technique": "rrf", "rank_constant": 60, "parameters": {"weights": [0.5, 0.5]}},
    }}]}
    assert RRF_RANK_CONSTANT == RRF_K


def test_server_hybrid_refuses_what_it_cannot_blend():
    engine = OpenSearchEngine(UNREACHABLE)
    sent = _captured(engine)
    with pytest.raises(ValueError, match="borda"):
        engine.server_hybrid_search("products", hybrid("borda", [0.5, 0.5]))
    with pytest.raises(ValueError, match="not all zero"):
        engine.server_hybrid_search("products", hybrid("min_max", [0.0, 0.0]))
    assert sent == []
    with pytest.raises(NotImplementedError, match="elasticsearch"):
        ElasticsearchEngine(UNREACHABLE).server_hybrid_search("products", hybrid("min_max", [0.5, 0.5]))


def test_msearch_raises_a_failed_sub_search_by_its_status():
    engine = OpenSearchEngine(UNREACHABLE)
    for status, expected in ((429, EngineUnavailable), (400, EngineRequestError)):
        engine._request = lambda *a, status=status, **kw: {  # type: ignore[method-assign]
            "responses": [{"hits": {"hits": []}}, {"error": {"type": "x"}, "status": status}]}
        with pytest.raises(expected):
            engine.msearch("products", [{}, {}])


def test_unknown_engine_kind_names_the_known_ones():
    assert ENGINE_KINDS == ("opensearch", "elasticsearch")
    with pytest.raises(ValueError, match="opensearch, elasticsearch"):
        connect("solr", UNREACHABLE)


def test_credentials_never_reach_error_text():
    from engines.base import EngineUnavailable, redact

    assert redact("http://admin:s3cret@es.local:9200/x and https://u:p@h") == "http://***@es.local:9200/x and https://***@h"
    error = EngineUnavailable("OpenSearch at http://admin:s3cret@127.0.0.1:9 unreachable")
    assert "s3cret" not in str(error) and "127.0.0.1:9" in str(error)


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_an_unreachable_engine_with_credentials_in_its_url_says_so_without_them(kind):
    engine = connect(kind, "http://admin:s3cret@127.0.0.1:9")
    with pytest.raises(EngineUnavailable) as error:
        engine.refresh("products")
    assert "s3cret" not in str(error.value) and "admin" not in str(error.value)
    assert "s3cret" not in engine.url


def test_search_url_may_list_several_nodes():
    from engines.base import failover_retries, node_urls

    urls = node_urls("http://a:9200, http://b:9200")
    assert urls == ["http://a:9200", "http://b:9200"] and failover_retries(urls) == 1
    assert failover_retries(node_urls("http://a:9200")) == 0
    with pytest.raises(ValueError, match="SEARCH_URL"):
        node_urls(" , ")


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_a_request_moves_to_a_live_node_when_one_is_down(kind: str, node: type[FakeNode]):
    node.answer = (200, {})
    engine = connect(kind, f"http://127.0.0.1:9,{node.url}")  # type: ignore[attr-defined]
    for _ in range(4):  # round robin reaches the dead node at least once
        engine.refresh("products")
    assert node.requests == ["POST /products/_refresh"] * 4


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_a_busy_answer_is_not_retried_on_the_other_node(kind: str, node: type[FakeNode]):
    node.answer = (503, {"error": "busy", "status": 503})
    other = node.url.replace("127.0.0.1", "localhost")  # type: ignore[attr-defined]  # the same server, a second name
    engine = connect(kind, f"{node.url},{other}")  # type: ignore[attr-defined]
    with pytest.raises(EngineUnavailable, match="503"):
        engine.refresh("products")
    assert node.requests == ["POST /products/_refresh"]


def test_a_search_is_repeated_once_after_a_5xx_and_never_after_no_answer_or_429():
    """A node leaving mid-search makes the coordinator answer 500; the repeat goes to a replica."""
    engine = OpenSearchEngine(UNREACHABLE)
    for first, sent_times in ((500, 2), (503, 2), (429, 1), (400, 1)):
        sent: list[int] = []

        def request(*args: Any, first: int = first, **kwargs: Any) -> dict[str, Any]:
            sent.append(1)
            if len(sent) == 1:
                return {"responses": [{"error": {"type": "node_disconnected_exception"}, "status": first}]}
            return {"responses": [{"hits": {"hits": []}}]}

        engine._request = request  # type: ignore[method-assign]
        try:
            assert engine.msearch("products", [{}]) == [{"hits": {"hits": []}}]
        except (EngineUnavailable, EngineRequestError):
            assert first < 500
        assert len(sent) == sent_times

    twice: list[int] = []

    def always_500(*args: Any, **kwargs: Any) -> dict[str, Any]:
        twice.append(1)
        raise EngineUnavailable("engine answered 500", 500)

    engine._request = always_500  # type: ignore[method-assign]
    with pytest.raises(EngineUnavailable):
        engine.search("products", {})
    assert len(twice) == 2  # once more, not forever

    engine = OpenSearchEngine(UNREACHABLE)  # no answer at all: raised at the first try
    with pytest.raises(EngineUnavailable) as raised:
        engine.search("products", {})
    assert raised.value.status is None
