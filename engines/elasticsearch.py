"""Elasticsearch adapter: ``dense_vector`` (HNSW, cosine) and the top-level ``knn`` section.

The integ-test build this project can run locally lacks the ``analysis-common`` module, so the
``english`` analyzer is detected rather than assumed; users' full distributions have it.
``GET /`` answers 405 on that build, so nothing here relies on ``info()``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

import elastic_transport
from elasticsearch import ApiError, Elasticsearch, helpers
from elasticsearch.serializer import OrjsonSerializer

from engines.base import EngineError, EngineUnavailable, SearchEngine, error_for_status, failover_retries
from es_mappings import HnswGraph

_JSON = {"accept": "application/json", "content-type": "application/json"}
_NDJSON = {"accept": "application/json", "content-type": "application/x-ndjson"}


class ElasticsearchEngine(SearchEngine):
    kind = "elasticsearch"
    _client_errors = (ApiError, elastic_transport.TransportError)
    _vectors_in_source = {"_source_exclude_vectors": "false"}  # 9.2 leaves them out of _source by default

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        super().__init__(url)
        # No retries in the client: the drain task declares them (see engines.base).
        # orjson parses the legs' hits several times faster than json (engines.opensearch.OrjsonSerializer).
        self.client = Elasticsearch(self.urls, request_timeout=timeout_s, max_retries=failover_retries(self.urls),
                                    retry_on_status=(), retry_on_timeout=False, serializer=OrjsonSerializer())

    def _request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        headers = _NDJSON if isinstance(body, str) else _JSON
        with self._translated():
            return self.client.perform_request(
                method, path, params=dict(params or {}), headers=headers, body=body
            ).body

    def _streaming_bulk(self) -> Callable[..., Iterator[tuple[bool, dict[str, Any]]]]:
        return lambda actions, **kw: helpers.streaming_bulk(self.client, actions, **kw)

    def _translate(self, exc: Exception) -> EngineError | None:
        if isinstance(exc, ApiError):
            return error_for_status(exc.meta.status, exc.body)
        if isinstance(exc, (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout)):
            return EngineUnavailable(f"Elasticsearch at {self.url} unreachable: {exc}")
        return None

    def vector_mapping(
        self, dimension: int, quantized: bool = False, graph: HnswGraph = HnswGraph()
    ) -> dict[str, Any]:
        # The graph type stated explicitly: recent versions default to quantised (int8/bbq) graphs.
        return {
            "type": "dense_vector",
            "dims": dimension,
            "index": True,
            "similarity": "cosine",
            "index_options": {"type": "int8_hnsw" if quantized else "hnsw", "m": graph.m,
                              "ef_construction": graph.ef_construction},
        }

    def knn_query(
        self, field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]],
        candidates: int | None = None, oversample: float | None = None,
    ) -> dict[str, Any]:
        knn: dict[str, Any] = {
            "field": field,
            "query_vector": [float(x) for x in vector],
            "k": k,
            "num_candidates": max(2 * k, 100) if candidates is None else max(k, candidates),
        }
        if filters:
            knn["filter"] = list(filters)
        if oversample is not None:
            knn["rescore_vector"] = {"oversample": oversample}
        return {"size": k, "knn": knn}

    def open_point_in_time(self, index: str, keep_alive: str) -> str:
        return str(self._request("POST", f"/{index}/_pit", params={"keep_alive": keep_alive})["id"])

    def close_point_in_time(self, pit_id: str) -> None:
        self._request("DELETE", "/_pit", body={"id": pit_id})

    def close(self) -> None:
        self.client.close()
