"""OpenSearch adapter: ``knn_vector`` with the Lucene HNSW engine, and the server-side ``hybrid``.

The k-NN plugin zip published on Maven Central carries no native libraries, so every vector
field says ``engine: lucene`` explicitly (faiss, the default, would crash the node on the first
vector). Lucene's HNSW also supports efficient filtering inside the kNN search.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Mapping, Sequence

from opensearchpy import OpenSearch, helpers
from opensearchpy import exceptions as os_exc

from engines.base import EngineError, EngineRequestError, EngineUnavailable, SearchEngine

# The client logs every non-2xx answer as a warning; this adapter turns each into an exception
# (a 404 on an alias lookup is an ordinary answer), so the client's own log is only noise.
logging.getLogger("opensearch").setLevel(logging.ERROR)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128


class OpenSearchEngine(SearchEngine):
    kind = "opensearch"

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        super().__init__(url)
        self.client = OpenSearch(
            hosts=[url], timeout=timeout_s, max_retries=2, retry_on_timeout=True, http_compress=False
        )
        self._plugins: set[str] | None = None

    def request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        headers = {"content-type": "application/x-ndjson"} if isinstance(body, str) else None
        try:
            return self.client.transport.perform_request(
                method, path, params=dict(params or {}), body=body, headers=headers
            )
        except Exception as exc:
            raise self._translate(exc) from exc

    def _streaming_bulk(self) -> Callable[..., Iterator[tuple[bool, dict[str, Any]]]]:
        return lambda actions, **kw: helpers.streaming_bulk(self.client, actions, **kw)

    def _translate(self, exc: Exception) -> EngineError:
        if isinstance(exc, (os_exc.ConnectionError, os_exc.ConnectionTimeout)):
            return EngineUnavailable(f"OpenSearch at {self.url} unreachable: {exc}")
        if isinstance(exc, os_exc.TransportError) and isinstance(exc.status_code, int):
            if exc.status_code == 429 or exc.status_code >= 500:
                return EngineUnavailable(f"OpenSearch answered {exc.status_code}: {exc.info}")
            return EngineRequestError(exc.status_code, exc.info)
        if isinstance(exc, EngineError):
            return exc
        return EngineUnavailable(f"OpenSearch request failed: {exc!r}")

    def vector_mapping(self, dimension: int) -> dict[str, Any]:
        return {
            "type": "knn_vector",
            "dimension": dimension,
            "method": {
                "name": "hnsw",
                "engine": "lucene",
                "space_type": "cosinesimil",
                "parameters": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
            },
        }

    def index_settings(self) -> dict[str, Any]:
        return {"knn": True}

    def knn_query(
        self, field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        clause: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
        if filters:
            clause["filter"] = {"bool": {"filter": list(filters)}}
        return {"size": k, "query": {"knn": {field: clause}}}

    # --- neural-search: server-side hybrid ------------------------------------------------
    def plugins(self) -> set[str]:
        if self._plugins is None:
            rows = self.request("GET", "/_cat/plugins", params={"format": "json"})
            self._plugins = {row["component"] for row in rows}
        return self._plugins

    @property
    def supports_server_hybrid(self) -> bool:
        return "opensearch-neural-search" in self.plugins()

    def put_search_pipeline(self, name: str, method: str, weights: Sequence[float]) -> None:
        """A search pipeline that normalises each sub-query's scores and blends them.

        ``min_max``/``z_score`` use the normalization processor with a weighted arithmetic
        mean; ``rrf`` uses the score-ranker processor.
        """
        if method == "rrf":
            processor = {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 60}}}
        else:
            processor = {
                "normalization-processor": {
                    "normalization": {"technique": method},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [float(w) for w in weights]},
                    },
                }
            }
        self.request(
            "PUT",
            f"/_search/pipeline/{name}",
            body={"description": f"hybrid {method} blend", "phase_results_processors": [processor]},
        )

    def hybrid_search(self, index: str, body: Mapping[str, Any], pipeline: str) -> dict[str, Any]:
        """Run a ``hybrid`` query through ``pipeline``.

        Without a pipeline the plugin returns internal sentinel scores and duplicate hits
        instead of failing, so the pipeline is a required argument here.
        """
        return self.request(
            "POST", f"/{index}/_search", body=body, params={"search_pipeline": pipeline}
        )

    def close(self) -> None:
        self.client.close()
