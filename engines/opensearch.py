"""OpenSearch adapter: ``knn_vector`` with the Lucene HNSW engine, and the server-side ``hybrid``.

The k-NN plugin zip published on Maven Central carries no native libraries, so every vector
field says ``engine: lucene`` explicitly (faiss, the default, would crash the node on the first
vector). Lucene's HNSW also supports efficient filtering inside the kNN search.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Mapping, Sequence

import orjson
from opensearchpy import OpenSearch, helpers
from opensearchpy import exceptions as os_exc
from opensearchpy.serializer import JSONSerializer

from engines.base import (
    EngineError,
    EngineUnavailable,
    HybridQuery,
    SearchEngine,
    error_for_status,
    failover_retries,
)
from es_mappings import HnswGraph

# The client logs every non-2xx answer as a warning; this adapter turns each into an exception
# (a 404 on an alias lookup is an ordinary answer), so the client's own log is only noise.
logging.getLogger("opensearch").setLevel(logging.ERROR)

RRF_RANK_CONSTANT = 60
"""The score-ranker's ``k``: the same as the client-side blend's (``query_rewriter.blend.RRF_K``)."""
NORMALIZATIONS = ("min_max", "z_score")
"""Blend methods the normalization processor runs under the same name; ``rrf`` is the score ranker."""


class OrjsonSerializer(JSONSerializer):
    """The client's JSON through orjson, as the Elasticsearch client offers it built in.

    Why: a hybrid search reads two legs of a hundred hits with their sources, and the standard
    ``json`` module took about 0.7 ms per search to parse them and 0.4 ms to write the query vector,
    a tenth of a whole search on a small index (``docs/performance.md``). Anything orjson cannot
    write natively goes through the client's own ``default`` (dates, numpy, pandas), as before.
    """

    def loads(self, s: Any) -> Any:
        try:
            return orjson.loads(s)
        except (ValueError, TypeError) as exc:
            raise os_exc.SerializationError(s, exc) from exc

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        try:
            return orjson.dumps(data, default=self.default, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        except (ValueError, TypeError) as exc:
            raise os_exc.SerializationError(data, exc) from exc


class OpenSearchEngine(SearchEngine):
    kind = "opensearch"
    _client_errors = (os_exc.OpenSearchException,)

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        super().__init__(url)
        # No retries in the client: the drain task declares them (see engines.base).
        self.client = OpenSearch(
            hosts=self.urls, timeout=timeout_s, max_retries=failover_retries(self.urls), retry_on_status=(),
            retry_on_timeout=False, http_compress=False, serializer=OrjsonSerializer(),
        )
        self._plugins: set[str] | None = None

    def _request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        headers = {"content-type": "application/x-ndjson"} if isinstance(body, str) else None
        with self._translated():
            return self.client.transport.perform_request(
                method, path, params=dict(params or {}), body=body, headers=headers
            )

    def _streaming_bulk(self) -> Callable[..., Iterator[tuple[bool, dict[str, Any]]]]:
        return lambda actions, **kw: helpers.streaming_bulk(self.client, actions, **kw)

    def _translate(self, exc: Exception) -> EngineError | None:
        if isinstance(exc, os_exc.ConnectionError):  # timeouts and TLS failures included
            return EngineUnavailable(f"OpenSearch at {self.url} unreachable: {exc}")
        if isinstance(exc, os_exc.TransportError) and isinstance(exc.status_code, int):
            return error_for_status(exc.status_code, exc.info)
        return None

    def vector_mapping(
        self, dimension: int, quantized: bool = False, graph: HnswGraph = HnswGraph()
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {"m": graph.m, "ef_construction": graph.ef_construction}
        if quantized:
            # Lucene scalar quantisation, one byte per dimension; 3.6 wants the width stated (7, or 1: binary).
            parameters["encoder"] = {"name": "sq", "parameters": {"bits": 7}}
        return {
            "type": "knn_vector",
            "dimension": dimension,
            "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil", "parameters": parameters},
        }

    def index_settings(self) -> dict[str, Any]:
        return {"knn": True}

    def knn_query(
        self, field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]],
        candidates: int | None = None, oversample: float | None = None,
    ) -> dict[str, Any]:
        return {"size": k, "query": _knn_clause(field, vector, k, filters, candidates, oversample)}

    def open_point_in_time(self, index: str, keep_alive: str) -> str:
        answer = self._request("POST", f"/{index}/_search/point_in_time", params={"keep_alive": keep_alive})
        return str(answer["pit_id"])

    def close_point_in_time(self, pit_id: str) -> None:
        self._request("DELETE", "/_search/point_in_time", body={"pit_id": [pit_id]})

    # --- neural-search: server-side hybrid ------------------------------------------------
    def plugins(self) -> set[str]:
        if self._plugins is None:
            rows = self._request("GET", "/_cat/plugins", params={"format": "json"})
            self._plugins = {row["component"] for row in rows}
        return self._plugins

    @property
    def supports_server_hybrid(self) -> bool:
        return "opensearch-neural-search" in self.plugins()

    def server_hybrid_search(self, index: str, query: HybridQuery, pipeline: str | None = None) -> dict[str, Any]:
        """neural-search's ``hybrid`` query, blended by a pipeline defined in the request itself, or by the
        stored pipeline ``pipeline``.

        A temporary pipeline (OpenSearch 2.8+; both the normalization and the score-ranker
        processor run in one, checked on 3.6) leaves nothing on the cluster, so any number of
        (method, weights) settings costs no cluster state. Without a pipeline the plugin returns
        internal sentinel scores and duplicate hits instead of failing, so every request carries one.
        A stored one is what a deployment of neural-search with one fixed blend runs: the node parses
        no pipeline per request (``bench.performance.query_paths`` times both).
        """
        knn = _knn_clause(query.vector_field, query.vector, query.depth, query.filters, query.candidates,
                          query.oversample)
        body: dict[str, Any] = {
            "size": query.hits,
            "_source": query.source,
            "query": {"hybrid": {"pagination_depth": query.depth, "queries": [query.bm25_query, knn]}},
        }
        if pipeline is None:
            body["search_pipeline"] = hybrid_pipeline(query.method, query.weights)
            return self.search(index, body)
        return self.search(index, body, params={"search_pipeline": pipeline})

    def put_hybrid_pipeline(self, name: str, method: str, weights: Sequence[float]) -> None:
        self._request("PUT", f"/_search/pipeline/{name}", body=hybrid_pipeline(method, weights))

    def close(self) -> None:
        self.client.close()


def _knn_clause(
    field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]], candidates: int | None = None,
    oversample: float | None = None,
) -> dict[str, Any]:
    """The k-NN plugin's ``knn`` query clause, filtered inside the HNSW search (Lucene engine).

    The Lucene engine searches with ``max(k, ef_search)`` candidates, ``ef_search`` being the
    query's ``method_parameters`` or else the index setting ``index.knn.algo_param.ef_search``
    (default 100).
    """
    clause: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
    if filters:
        clause["filter"] = {"bool": {"filter": list(filters)}}
    if candidates is not None:
        clause["method_parameters"] = {"ef_search": candidates}
    if oversample is not None:
        clause["rescore"] = {"oversample_factor": oversample}
    return {"knn": {field: clause}}


def hybrid_pipeline(method: str, weights: Sequence[float]) -> dict[str, Any]:
    """The search pipeline that blends a two-leg ``hybrid`` query's scores by ``method``.

    ``min_max``/``z_score`` normalise each leg with the normalization processor, then take the
    weighted arithmetic mean; ``rrf`` is the score-ranker processor's weighted RRF. neural-search
    wants weights summing to 1; dividing by their sum changes no weighted mean, and scales every
    RRF score alike (the ranking stays).
    """
    total = sum(weights)
    if any(w < 0 for w in weights) or total <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {list(weights)}")
    parameters = {"weights": [w / total for w in weights]}
    if method == "rrf":
        processor = {
            "score-ranker-processor": {
                "combination": {"technique": "rrf", "rank_constant": RRF_RANK_CONSTANT, "parameters": parameters}
            }
        }
    elif method in NORMALIZATIONS:
        processor = {
            "normalization-processor": {
                "normalization": {"technique": method},
                "combination": {"technique": "arithmetic_mean", "parameters": parameters},
            }
        }
    else:
        raise ValueError(f"unknown blend method {method!r}; expected rrf or one of {list(NORMALIZATIONS)}")
    return {"phase_results_processors": [processor]}
