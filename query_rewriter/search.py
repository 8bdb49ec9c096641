"""The search entry point: one query in, a page of blended, explained hits out.

Pagination works over a fixed candidate window (``depth`` per leg): every page of one query is
cut from the same blended list, so pages never repeat or skip a product. A page past the window
is refused with a clear error rather than silently re-ranked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, get_args

from acebert.encoder import Encoder
from engines import HybridQuery, SearchEngine
from es_mappings import VECTOR_FIELD
from query_rewriter.blend import METHODS, Blended, Method, blend
from query_rewriter.requests import SOURCE, Filters, bm25_body, bm25_query, knn_body
from query_rewriter.rewrite import rewrite
from query_rewriter.thresholds import Thresholds, cut_fused, cut_leg

Mode = Literal["bm25", "knn", "hybrid", "server_hybrid"]
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_WEIGHTS = {"bm25": 0.5, "knn": 0.5}


@dataclass(frozen=True)
class SearchRequest:
    query: str
    filters: Filters = Filters()
    mode: Mode = "hybrid"
    method: Method = "min_max"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    page: int = 1
    size: int = 10
    depth: int = 100
    rewrite: bool = True
    # dfs_query_then_fetch: index-wide BM25 statistics on a sharded index (docs/scaling.md).
    dfs: bool = False
    # Minimum scores per leg and on the fused score (query_rewriter.thresholds).
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {list(MODES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown blend method {self.method!r}; expected one of {list(METHODS)}")
        if self.page < 1 or self.size < 1:
            raise ValueError("page and size start at 1")
        for leg, weight in self.weights.items():
            if not 0.0 <= weight <= 1.0:  # also refuses NaN
                raise ValueError(f"the {leg} weight must be between 0 and 1, not {weight}")
        if self.mode == "server_hybrid" and self.thresholds.on_legs:
            raise ValueError("minimum leg scores need the client-side blend (mode hybrid); server_hybrid "
                             "takes only the fused minimum")
        if self.page * self.size > self.depth:
            raise ValueError(
                f"page {self.page} of size {self.size} reaches past the candidate window of "
                f"{self.depth}; raise depth (the ranking is cut from the top {self.depth} of each leg)"
            )


@dataclass(frozen=True)
class Hit:
    product_id: str
    score: float
    source: dict[str, Any]
    leg_scores: dict[str, float]
    normalized: dict[str, float]
    ranks: dict[str, int]


@dataclass(frozen=True)
class SearchResponse:
    query: str
    hits: list[Hit]
    candidates: int
    timings_ms: dict[str, float]
    removed: dict[str, int] = field(default_factory=dict)  # candidates each threshold removed


def _leg(response: Mapping[str, Any]) -> tuple[list[tuple[str, float]], dict[str, dict[str, Any]]]:
    hits = response["hits"]["hits"]
    return [(h["_id"], float(h["_score"])) for h in hits], {h["_id"]: h.get("_source", {}) for h in hits}


class HybridSearcher:
    """Hybrid BM25 + kNN search: each search asks ``target()`` for the index to search and the
    encoder of the model that made its vectors, so a searcher can follow an alias to a new index
    version (``system.System.searcher``) or stay on one index (:meth:`over`)."""

    def __init__(self, engine: SearchEngine, target: Callable[[], tuple[str, Encoder]]) -> None:
        self.engine = engine
        self.target = target

    @classmethod
    def over(cls, engine: SearchEngine, encoder: Encoder, index: str) -> HybridSearcher:
        """A searcher of one index (or alias) with one encoder for queries."""
        return cls(engine, lambda: (index, encoder))

    def search(self, request: SearchRequest) -> SearchResponse:
        timings: dict[str, float] = {}
        removed: dict[str, int] = {}
        started = time.perf_counter()
        index, encoder = self.target()
        rewritten = rewrite(request.query) if request.rewrite else None
        text = rewritten.text if rewritten else request.query
        filters = request.filters
        if rewritten and (rewritten.price_min is not None or rewritten.price_max is not None):
            filters = Filters(
                filters.category, filters.brand,
                filters.price_min if filters.price_min is not None else rewritten.price_min,
                filters.price_max if filters.price_max is not None else rewritten.price_max,
            )
        clauses = filters.clauses()

        vector = None
        if request.mode != "bm25":
            t = time.perf_counter()
            vector = encoder.encode_queries([text])[0].tolist()
            timings["encode"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        if request.mode == "server_hybrid":
            blended, sources = self._server_hybrid(index, request, text, clauses, vector)
        else:
            bodies = {}
            if request.mode in ("bm25", "hybrid"):
                bodies["bm25"] = bm25_body(text, clauses, request.depth)
            if request.mode in ("knn", "hybrid"):
                bodies["knn"] = knn_body(self.engine, vector, clauses, request.depth)
            responses = self.engine.msearch(index, list(bodies.values()), dfs=request.dfs)
            timings["engine"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            legs, sources = {}, {}
            for name, response in zip(bodies, responses):
                hits, leg_sources = _leg(response)
                legs[name], removed[name] = cut_leg(hits, request.thresholds.for_leg(name))
                sources.update(leg_sources)
            weights = {name: request.weights.get(name, 0.0) for name in legs}
            if len(legs) == 1:
                weights = {name: 1.0 for name in legs}
            blended = blend(legs, weights, request.method)
            timings["blend"] = (time.perf_counter() - t) * 1000

        blended, removed["fused"] = cut_fused(blended, request.thresholds.fused)
        start = (request.page - 1) * request.size
        page = blended[start : start + request.size]
        hits = [
            Hit(b.doc_id, b.score, sources.get(b.doc_id, {}), dict(b.raw), dict(b.normalized), dict(b.ranks))
            for b in page
        ]
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResponse(query=text, hits=hits, candidates=len(blended), timings_ms=timings, removed=removed)

    def _server_hybrid(
        self, index: str, request: SearchRequest, text: str, clauses: list[dict[str, Any]], vector: list[float] | None
    ) -> tuple[list[Blended], dict[str, dict[str, Any]]]:
        """The engine's own blend of the same two legs (OpenSearch neural-search's ``hybrid``)."""
        if not self.engine.supports_server_hybrid:
            raise ValueError(f"{self.engine.kind} here has no server-side hybrid query (neural-search)")
        query = HybridQuery(
            bm25_query=bm25_query(text, clauses),
            vector_field=VECTOR_FIELD,
            vector=vector or [],
            filters=clauses,
            depth=request.depth,
            method=request.method,
            weights=[request.weights.get("bm25", 0.0), request.weights.get("knn", 0.0)],
            source=SOURCE,
        )
        response = self.engine.server_hybrid_search(index, query)
        hits = response["hits"]["hits"]
        blended = [Blended(h["_id"], float(h["_score"])) for h in hits]
        return blended, {h["_id"]: h.get("_source", {}) for h in hits}
