"""The engine interface, and everything both engines do the same way.

Requests are plain REST calls with plain dict bodies sent through each official client's
transport (connection pooling, retries on connection errors): a reader can print the exact JSON.
Only the pieces that really differ are abstract.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence


class EngineError(RuntimeError):
    """Base of the errors an adapter raises, whatever the client library underneath."""


class EngineUnavailable(EngineError):
    """Connection refused, timeout, 429 or 5xx: worth retrying later."""


class EngineRequestError(EngineError):
    """The engine refused the request itself (4xx other than 429): retrying will not help."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"engine answered {status}: {json.dumps(body, default=str)[:2000]}")


@dataclass(frozen=True)
class BulkOutcome:
    """What happened to one bulk action, keyed by the document id."""

    doc_id: str
    op: str
    status: int
    error: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def stale(self) -> bool:
        """A version conflict under external versioning: the engine already has a newer event."""
        return self.status == 409

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class SearchEngine(ABC):
    """One search cluster, OpenSearch or Elasticsearch, behind one small interface."""

    kind: str

    def __init__(self, url: str) -> None:
        self.url = url

    # --- transport: the one thing each adapter must provide ------------------------------
    @abstractmethod
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one REST request; raise :class:`EngineUnavailable` or :class:`EngineRequestError`."""

    @abstractmethod
    def _streaming_bulk(self) -> Callable[..., Iterator[tuple[bool, dict[str, Any]]]]:
        """The client library's ``helpers.streaming_bulk`` bound to this client."""

    # --- what differs between engines -------------------------------------------------------
    @abstractmethod
    def vector_mapping(self, dimension: int) -> dict[str, Any]:
        """The mapping of the dense-vector field (HNSW, cosine)."""

    def index_settings(self) -> dict[str, Any]:
        """Extra index-level settings the vector field needs."""
        return {}

    @abstractmethod
    def knn_query(
        self, field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """A search body whose hits are the ``k`` nearest products that pass ``filters``."""

    def text_analyzer(self) -> dict[str, Any]:
        """The analyzer for text fields: ``english`` where the node has it.

        Reduced builds (the Elasticsearch integ-test zip) lack ``analysis-common``; there the
        standard analyzer with English stop words is the closest stand-in (no stemming).
        """
        if self.has_analyzer("english"):
            return {"type": "english"}
        return {"type": "standard", "stopwords": "_english_"}

    # --- shared behaviour ------------------------------------------------------------------
    def health(self, wait_for_status: str = "yellow", timeout: str = "30s") -> dict[str, Any]:
        return self.request(
            "GET", "/_cluster/health", params={"wait_for_status": wait_for_status, "timeout": timeout}
        )

    def has_analyzer(self, name: str) -> bool:
        """Whether the node knows a built-in analyzer (reduced builds lack ``english``)."""
        try:
            self.request("POST", "/_analyze", body={"analyzer": name, "text": "running shoes"})
        except EngineRequestError:
            return False
        return True

    def index_exists(self, index: str) -> bool:
        try:
            self.request("GET", f"/{index}/_mapping")
        except EngineRequestError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_index(self, index: str, body: Mapping[str, Any]) -> None:
        self.request("PUT", f"/{index}", body=body)

    def delete_index(self, index: str) -> None:
        try:
            self.request("DELETE", f"/{index}")
        except EngineRequestError as exc:
            if exc.status != 404:
                raise

    def indices_of_alias(self, alias: str) -> list[str]:
        try:
            answer = self.request("GET", f"/_alias/{alias}")
        except EngineRequestError as exc:
            if exc.status == 404:
                return []
            raise
        return sorted(answer)

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """Apply alias actions atomically (one ``POST /_aliases``)."""
        self.request("POST", "/_aliases", body={"actions": list(actions)})

    def refresh(self, index: str) -> None:
        self.request("POST", f"/{index}/_refresh")

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query else None
        return int(self.request("POST", f"/{index}/_count", body=body)["count"])

    def get(self, index: str, doc_id: str) -> dict[str, Any] | None:
        """The stored document with its ``_version``, or ``None``."""
        try:
            return self.request("GET", f"/{index}/_doc/{doc_id}")
        except EngineRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def search(
        self, index: str, body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.request("POST", f"/{index}/_search", body=body, params=params)

    def msearch(self, index: str, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Run several searches in one round trip; a failed sub-search raises."""
        lines: list[Mapping[str, Any]] = []
        for body in bodies:
            lines += [{"index": index}, body]
        ndjson = "".join(json.dumps(line) + "\n" for line in lines)
        answer = self.request("POST", "/_msearch", body=ndjson)
        responses = answer["responses"]
        for response in responses:
            if "error" in response:
                status = int(response.get("status", 400))
                error_cls = EngineUnavailable if status == 429 or status >= 500 else None
                if error_cls:
                    raise error_cls(f"msearch sub-request failed with {status}: {response['error']}")
                raise EngineRequestError(status, response["error"])
        return responses

    def bulk(
        self, actions: Iterable[Mapping[str, Any]], max_retries: int = 3, chunk_size: int = 500
    ) -> list[BulkOutcome]:
        """Stream actions through the client's ``streaming_bulk``; one outcome per action.

        Items rejected with 429 are re-sent by the helper with doubling back-off; every other
        per-item failure (a 409 stale version included) comes back as an outcome, never raised,
        so the caller decides per event what to do.
        """
        outcomes = []
        try:
            for ok, item in self._streaming_bulk()(
                actions,
                chunk_size=chunk_size,
                max_retries=max_retries,
                initial_backoff=0.5,
                raise_on_error=False,
                raise_on_exception=True,
            ):
                op, result = next(iter(item.items()))
                outcomes.append(
                    BulkOutcome(
                        doc_id=str(result.get("_id")),
                        op=op,
                        status=int(result.get("status", 200 if ok else 500)),
                        error=result.get("error"),
                    )
                )
        except EngineError:
            raise
        except Exception as exc:  # the client's own transport errors
            raise self._translate(exc) from exc
        return outcomes

    def put_search_pipeline(self, name: str, method: str, weights: Sequence[float]) -> None:
        """Create a server-side score normalisation pipeline; only engines with one override this."""
        raise NotImplementedError(f"{self.kind} has no server-side hybrid query")

    def hybrid_search(self, index: str, body: Mapping[str, Any], pipeline: str) -> dict[str, Any]:
        """A server-side hybrid query; only engines with such a feature override this."""
        raise NotImplementedError(f"{self.kind} has no server-side hybrid query")

    @property
    def supports_server_hybrid(self) -> bool:
        return False

    @abstractmethod
    def _translate(self, exc: Exception) -> EngineError:
        """Map a client-library exception to :class:`EngineUnavailable` or :class:`EngineRequestError`."""

    def close(self) -> None:
        """Release the client's connections."""
