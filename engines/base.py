"""The engine interface, and everything both engines do the same way.

Requests are plain REST calls with plain dict bodies sent through each official client's
transport (connection pooling): a reader can print the exact JSON. Only the pieces that really
differ are abstract, and only this package sends raw REST calls: everything above it asks for a
named operation (``mapping``, ``force_merge``, ``server_hybrid_search``, ...).

Nothing here retries. The client sends each request once and ``bulk`` re-sends no item: the
drain task (``workers.tasks``) is the one place retries are declared, with its back-off and its
limit, so an overloaded engine is neither hidden behind nested waits nor hit by retries
multiplied across levels.
"""
from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import orjson

from es_mappings import HnswGraph

T = TypeVar("T")


_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub("***@", text)


class EngineError(RuntimeError):
    """Base of the errors an adapter raises, whatever the client library underneath.

    Its message never carries credentials: an engine URL with a user and password (or a client
    error that quotes one) is redacted here, because error text travels on into logs, dead
    letters and HTTP answers.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class EngineUnavailable(EngineError):
    """Connection refused, timeout, 429 or 5xx: worth retrying later.

    ``status`` is the engine's HTTP answer, None when there was none (refused, timed out): a
    5xx from a live node and no answer at all call for different handling (:meth:`SearchEngine.msearch`).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class EngineRequestError(EngineError):
    """The engine refused the request itself (4xx other than 429): retrying will not help."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"engine answered {status}: {json.dumps(body, default=str)[:2000]}")


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status may succeed later: 429 (too many requests) or 5xx (the engine's own trouble).

    Any other 4xx says the request itself is wrong, and the same request will be refused again.
    """
    return status == 429 or status >= 500


def error_for_status(status: int, body: Any) -> EngineError:
    """The error for an engine's non-2xx answer, retryable or not by :func:`is_retryable_status`."""
    if is_retryable_status(status):
        return EngineUnavailable(f"engine answered {status}: {json.dumps(body, default=str)[:2000]}", status)
    return EngineRequestError(status, body)


def repeated_once_on_5xx(send: Callable[[], T]) -> T:
    """``send()`` a read (search, msearch, count), and once more if a live engine answered it with a 5xx.

    A read is safe to repeat, and the query path makes all three (count: query_rewriter.knn_breadth).
    When a data node leaves the cluster mid-search, the coordinating node answers 500
    (``node_disconnected_exception``) for the phase whose shard copy went away, and sends the
    repeat to a surviving replica (tests/integration/test_cluster.py). No answer at all (refused,
    timed out) and 429 (overloaded) are not repeated: the caller decides, as for any outage.
    """
    try:
        return send()
    except EngineUnavailable as exc:
        if exc.status is None or exc.status < 500:
            raise
        return send()


def node_urls(url: str) -> list[str]:
    """The nodes of ``SEARCH_URL``: one URL, or several separated by commas (a cluster's nodes)."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("no engine URL given: set SEARCH_URL (one URL, or several separated by commas)")
    return urls


def failover_retries(urls: Sequence[str]) -> int:
    """The client's retries: one per other node, on connection errors only, so a request moves to
    a live node when one is down. With one node that is none: the drain task declares retries."""
    return len(urls) - 1


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
        return is_retryable_status(self.status)


@dataclass(frozen=True)
class HybridQuery:
    """A BM25 query and a kNN leg for the engine to run and blend itself (server-side hybrid)."""

    bm25_query: Mapping[str, Any]  # its filters already inside
    vector_field: str
    vector: Sequence[float]
    filters: Sequence[Mapping[str, Any]]  # for the kNN leg: the same as the BM25 query's
    depth: int  # candidates per leg, blended before the page is cut
    method: str  # min_max, z_score or rrf
    weights: Sequence[float]  # the BM25 and the kNN leg's, in that order
    source: Any  # the ``_source`` of each hit
    candidates: int | None = None  # the kNN leg's search breadth (see SearchEngine.knn_query)
    oversample: float | None = None  # the kNN leg's float rescoring of quantised vectors (idem)
    size: int | None = None  # hits returned (and sources fetched); None: the whole blended window

    @property
    def hits(self) -> int:
        return self.depth if self.size is None else self.size


class SearchEngine(ABC):
    """One search cluster, OpenSearch or Elasticsearch, behind one small interface."""

    kind: str
    _client_errors: tuple[type[Exception], ...]
    """The client library's exception classes; :meth:`_translated` hands them to :meth:`_translate`."""
    _vectors_in_source: Mapping[str, str] = {}
    """Read parameters that put vector fields in a whole ``_source`` (OpenSearch keeps them there)."""

    def __init__(self, url: str) -> None:
        self.urls = node_urls(url)
        self.url = redact(", ".join(self.urls))  # for messages: without credentials

    # --- transport: the one thing each adapter must provide ------------------------------
    @abstractmethod
    def _request(
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

    @abstractmethod
    def _translate(self, exc: Exception) -> EngineError | None:
        """The :class:`EngineError` for one of the client library's exceptions, or ``None``.

        Only transport and connection failures and non-2xx answers have one: anything else (a
        body that cannot be serialised, say) is a bug, and retrying it as an outage would only
        hide it, so :meth:`_translated` lets it propagate unchanged.
        """

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Raise the client library's errors as :class:`EngineError`; let every other exception pass."""
        try:
            yield
        except self._client_errors as exc:
            error = self._translate(exc)
            if error is None:
                raise
            raise error from exc

    # --- what differs between engines -------------------------------------------------------
    @abstractmethod
    def vector_mapping(
        self, dimension: int, quantized: bool = False, graph: HnswGraph = HnswGraph()
    ) -> dict[str, Any]:
        """The mapping of the dense-vector field (HNSW, cosine), its graph built as ``graph`` says.

        ``quantized``: the graph searches int8 scalar-quantised copies of the vectors (Lucene's
        scalar quantisation on both engines), a quarter of the float vectors' memory, at some
        cost in recall that ``python -m bench.performance.scale --quantized`` measures.
        """

    def index_settings(self) -> dict[str, Any]:
        """Extra index-level settings the vector field needs."""
        return {}

    @abstractmethod
    def knn_query(
        self, field: str, vector: Sequence[float], k: int, filters: Sequence[Mapping[str, Any]],
        candidates: int | None = None, oversample: float | None = None,
    ) -> dict[str, Any]:
        """A search body whose hits are the ``k`` nearest products that pass ``filters``.

        ``candidates`` is the HNSW search's breadth: how many vectors it keeps while it walks the
        graph (OpenSearch's ``ef_search``, Elasticsearch's ``num_candidates``; never below ``k``).
        More finds more of the true nearest neighbours in a large index and costs latency
        (``query_rewriter.knn_breadth`` picks it by index size). None: the engine's default.
        ``oversample``: on a quantised field (``vector_mapping(quantized=True)``), take ``k`` times
        this many hits by the quantised scores and re-rank them by the float vectors the index
        keeps (OpenSearch's ``rescore``, Elasticsearch's ``rescore_vector``); None: no rescoring.
        """

    def text_analyzer(self) -> dict[str, Any]:
        """The analyzer for text fields: ``english`` where the node has it.

        Reduced builds (the Elasticsearch integ-test zip) lack ``analysis-common``; there the
        standard analyzer with English stop words is the closest stand-in (no stemming).
        """
        if self.has_analyzer("english"):
            return {"type": "english"}
        return {"type": "standard", "stopwords": "_english_"}

    @property
    def supports_server_hybrid(self) -> bool:
        """Whether :meth:`server_hybrid_search` works on this cluster."""
        return False

    def server_hybrid_search(self, index: str, query: HybridQuery, pipeline: str | None = None) -> dict[str, Any]:
        """The engine's own fusion of both legs of ``query``; only engines with one override this.

        ``pipeline`` names a blend stored with :meth:`put_hybrid_pipeline` instead of sending one."""
        raise NotImplementedError(f"{self.kind} has no server-side hybrid query")

    def put_hybrid_pipeline(self, name: str, method: str, weights: Sequence[float]) -> None:
        """Store the blend of ``method`` and ``weights`` on the cluster as ``name``."""
        raise NotImplementedError(f"{self.kind} has no server-side hybrid query")

    # --- shared behaviour ------------------------------------------------------------------
    def health(self, wait_for_status: str = "yellow", timeout: str = "30s") -> dict[str, Any]:
        """Cluster health once it reaches ``wait_for_status``, or as it is after ``timeout``.

        The parameters go in the path: opensearch-py takes a ``timeout`` parameter for its own
        socket timeout (and refuses "30s"), not for the cluster's wait.
        """
        return self._request("GET", f"/_cluster/health?wait_for_status={wait_for_status}&timeout={timeout}")

    def has_analyzer(self, name: str) -> bool:
        """Whether the node knows a built-in analyzer (reduced builds lack ``english``)."""
        try:
            self._request("POST", "/_analyze", body={"analyzer": name, "text": "running shoes"})
        except EngineRequestError:
            return False
        return True

    def index_exists(self, index: str) -> bool:
        try:
            self._request("GET", f"/{index}/_mapping")
        except EngineRequestError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def indices(self, pattern: str) -> list[str]:
        """The concrete indices matching ``pattern`` (e.g. ``products-v*``), sorted; none is no error."""
        return sorted(self._request("GET", f"/{pattern}", params={"allow_no_indices": "true"}))

    def mapping(self, index: str) -> dict[str, Any]:
        """The mapping of ``index`` (or of the one index behind an alias)."""
        answer = self._request("GET", f"/{index}/_mapping")
        return next(iter(answer.values()))["mappings"]

    def add_fields(self, index: str, properties: Mapping[str, Any]) -> None:
        """Add the fields ``properties`` to ``index``'s mapping (existing fields cannot change)."""
        self._request("PUT", f"/{index}/_mapping", body={"properties": dict(properties)})

    def settings_of(self, index: str) -> dict[str, Any]:
        """The index-level settings of ``index`` (or of the one index behind an alias), as stored."""
        answer = self._request("GET", f"/{index}/_settings")
        return next(iter(answer.values()))["settings"]["index"]

    def create_index(self, index: str, body: Mapping[str, Any]) -> bool:
        """Create ``index``; ``False`` when it exists already (another process created it first)."""
        try:
            self._request("PUT", f"/{index}", body=body)
        except EngineRequestError as exc:
            if exc.status == 400 and "resource_already_exists_exception" in json.dumps(exc.body):
                return False
            raise
        return True

    def delete_index(self, index: str) -> None:
        try:
            self._request("DELETE", f"/{index}")
        except EngineRequestError as exc:
            if exc.status != 404:
                raise

    def indices_of_alias(self, alias: str) -> list[str]:
        try:
            answer = self._request("GET", f"/_alias/{alias}")
        except EngineRequestError as exc:
            if exc.status == 404:
                return []
            raise
        return sorted(answer)

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """Apply alias actions atomically (one ``POST /_aliases``)."""
        self._request("POST", "/_aliases", body={"actions": list(actions)})

    def refresh(self, index: str) -> None:
        self._request("POST", f"/{index}/_refresh")

    def flush(self, index: str) -> None:
        """Write ``index``'s in-memory segments to disk, so store sizes count every document."""
        self._request("POST", f"/{index}/_flush")

    def force_merge(self, index: str, poll_s: float) -> None:
        """Merge ``index`` to one segment and wait for it, polling the task every ``poll_s`` seconds.

        The merge runs as a task because it can outlast the client's request timeout.
        """
        answer = self._request(
            "POST", f"/{index}/_forcemerge", params={"max_num_segments": 1, "wait_for_completion": "false"}
        )
        while not self._request("GET", f"/_tasks/{answer['task']}").get("completed"):
            time.sleep(poll_s)

    def store_stats(self, index: str) -> dict[str, Any]:
        """The ``docs``, ``store`` and ``segments`` statistics of ``index``'s primary shards, the
        segments' bytes per file extension included (``segments.file_sizes``)."""
        answer = self._request("GET", f"/{index}/_stats/docs,store,segments",
                               params={"include_segment_file_sizes": "true"})
        return answer["indices"][index]["primaries"]

    def update_settings(self, index: str, settings: Mapping[str, Any]) -> None:
        """Change dynamic index settings (``refresh_interval``, ``gc_deletes``, ...)."""
        self._request("PUT", f"/{index}/_settings", body={"index": dict(settings)})

    def delete_matching(self, index: str, query: Mapping[str, Any], page_size: int = 500) -> int:
        """Delete the documents matching ``query`` that nobody changed meanwhile; returns how many.

        Pages through the matches and deletes each at the sequence number it was read at
        (``if_seq_no``/``if_primary_term``), so a document rewritten in between (a product
        re-created after its tombstone was read) is left alone. Built from search and bulk rather
        than ``_delete_by_query``, which the reduced Elasticsearch build lacks.
        """
        deleted = 0
        body: dict[str, Any] = {"size": page_size, "query": dict(query), "_source": False,
                                "seq_no_primary_term": True, "sort": [{"product_id": "asc"}]}
        while True:
            hits = self.search(index, body)["hits"]["hits"]
            if not hits:
                self.refresh(index)
                return deleted
            actions = [{"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"],
                        "if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]} for hit in hits]
            deleted += sum(outcome.ok for outcome in self.bulk(actions))
            body["search_after"] = hits[-1]["sort"]

    def shard_copies(self, index: str) -> list[tuple[int, bool]]:
        """The started copies of ``index``'s shards, as (shard number, is primary)."""
        rows = self._request("GET", f"/_cat/shards/{index}", params={"format": "json"})
        return sorted((int(row["shard"]), row["prirep"] == "p") for row in rows if row["state"] == "STARTED")

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query else None
        return int(repeated_once_on_5xx(lambda: self._request("POST", f"/{index}/_count", body=body))["count"])

    def get(self, index: str, doc_id: str) -> dict[str, Any] | None:
        """The stored document with its ``_version``, or ``None``."""
        try:
            return self._request("GET", f"/{index}/_doc/{doc_id}")
        except EngineRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def mget(
        self, index: str, ids: Sequence[str], source_excludes: Sequence[str] = (), source_includes: Sequence[str] = (),
        realtime: bool = True, vectors: bool = False,
    ) -> dict[str, Any]:
        """The documents ``ids`` of ``index`` in one round trip, with only the ``source_includes`` fields
        (all when empty) and without the ``source_excludes`` ones.

        Elasticsearch 9.2 leaves vectors out of ``_source`` unless they are named by an include or
        ``vectors`` asks for them. A whole source with its vectors costs the engine less than a
        filtered one, which it must parse and write again: 2.5x less on OpenSearch, 1.4x less on
        Elasticsearch for 64 documents with a 384-float vector (``bench.performance.lookup_reads``).
        ``realtime=False`` reads what the last refresh made visible: a caller that can live with a
        slightly older copy spares the engine the refresh a realtime read of a fresh write may cost.
        """
        params = {key: ",".join(fields) for key, fields in
                  (("_source_excludes", source_excludes), ("_source_includes", source_includes)) if fields}
        if vectors:
            params.update(self._vectors_in_source)
        if not realtime:
            params["realtime"] = "false"
        return self._request("POST", f"/{index}/_mget", body={"ids": list(ids)}, params=params)

    def search(
        self, index: str, body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return repeated_once_on_5xx(lambda: self._request("POST", f"/{index}/_search", body=body, params=params))

    # --- points in time: one consistent view to page through while writes go on ---------------
    @abstractmethod
    def open_point_in_time(self, index: str, keep_alive: str) -> str:
        """Open a point in time on ``index`` and return its id (the two engines name the API differently)."""

    @abstractmethod
    def close_point_in_time(self, pit_id: str) -> None:
        """Release a point in time before its keep-alive runs out."""

    def search_point_in_time(self, pit_id: str, keep_alive: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Search the view a point in time froze; each page renews it for ``keep_alive``."""
        return self._request("POST", "/_search", body={**body, "pit": {"id": pit_id, "keep_alive": keep_alive}})

    def mapping_meta(self, index: str) -> dict[str, Any]:
        """The ``_meta`` object of ``index``'s mapping (empty when none was set)."""
        return dict(self.mapping(index).get("_meta") or {})

    def msearch(
        self, index: str, bodies: Sequence[Mapping[str, Any]], dfs: bool = False
    ) -> list[dict[str, Any]]:
        """Run several searches in one round trip; a failed sub-search raises.

        ``dfs`` asks for ``dfs_query_then_fetch``: BM25 then uses index-wide term statistics
        instead of each shard's own, which matters on small indices with several shards.
        """
        header: dict[str, Any] = {"index": index}
        if dfs:
            header["search_type"] = "dfs_query_then_fetch"
        lines: list[Mapping[str, Any]] = []
        for body in bodies:
            lines += [header, body]
        # orjson: the kNN leg's vector is 384 floats, which json.dumps writes in about 0.4 ms.
        ndjson = b"".join(orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for line in lines).decode()

        def send() -> list[dict[str, Any]]:
            responses = self._request("POST", "/_msearch", body=ndjson)["responses"]
            for response in responses:
                if "error" in response:
                    raise error_for_status(int(response.get("status", 400)), response["error"])
            return responses

        return repeated_once_on_5xx(send)

    def bulk(self, actions: Iterable[Mapping[str, Any]], chunk_size: int = 500) -> list[BulkOutcome]:
        """Stream actions through the client's ``streaming_bulk``; one outcome per action.

        A failed request raises (:class:`EngineUnavailable` or :class:`EngineRequestError`); a
        failed item comes back as an outcome, never raised, so the caller decides per event. The
        helper re-sends nothing (``max_retries=0``): an item rejected with 429 is a retryable
        outcome like a 503 one, and the drain task, where retries are declared, retries it.
        """
        outcomes = []
        with self._translated():
            for ok, item in self._streaming_bulk()(
                actions, chunk_size=chunk_size, max_retries=0, raise_on_error=False, raise_on_exception=True
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
        return outcomes

    def close(self) -> None:
        """Release the client's connections."""
