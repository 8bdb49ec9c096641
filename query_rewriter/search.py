"""The search entry point: one query in, a page of blended, explained hits out.

Pages are cut from one ranked list that only grows at its end: the first window (each leg's top
``depth``) is blended as it always was, and a page past it adds a deeper tier of each leg
(:func:`query_rewriter.blend.blend_tiers`), up to :data:`MAX_WINDOW`. On an unchanged index page
N+1 therefore continues page N exactly; a ``cursor`` keeps that promise while the index changes
(:mod:`query_rewriter.cursor`). Every response carries the list's total (a lower bound when a leg
filled its window, so more products would come from a deeper one) and facet counts over the first
window (:mod:`query_rewriter.facets`), the same on every page.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping, Sequence, get_args

from acebert.encoder import Encoder
from engines import HybridQuery, SearchEngine
from es_mappings import UNSHOWN_FIELDS, VECTOR_FIELD
from query_rewriter.blend import METHODS, Blended, Leg, Method, blend_tiers, tier_depths
from query_rewriter.brand import brand_first, brand_words
from query_rewriter.cursor import CursorState, CursorStore, format_cursor, parse_cursor
from query_rewriter.facets import Facets, facet_counts
from query_rewriter.known_item import known_item, promote
from query_rewriter.requests import SOURCE, Filters, bm25_body, bm25_query, knn_body
from query_rewriter.rewrite import rewrite
from query_rewriter.thresholds import Thresholds, cut_fused, cut_leg

Mode = Literal["bm25", "knn", "hybrid", "server_hybrid"]
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_WEIGHTS = {"bm25": 0.5, "knn": 0.5}
MAX_WINDOW = 1000  # the deepest tier a leg is asked for: 100 pages of 10
NEW_CURSOR = "new"


@dataclass(frozen=True)
class SearchRequest:
    query: str
    filters: Filters = Filters()
    mode: Mode = "hybrid"
    method: Method = "min_max"
    # None: the weights stored with the model of the index searched (acebert.blend_choice), else DEFAULT_WEIGHTS.
    weights: Mapping[str, float] | None = None
    page: int = 1
    size: int = 10
    depth: int = 100
    rewrite: bool = True
    # dfs_query_then_fetch: index-wide BM25 statistics on a sharded index (docs/scaling.md).
    dfs: bool = False
    # Minimum scores per leg and on the fused score (query_rewriter.thresholds).
    thresholds: Thresholds = Thresholds()
    # Hybrid: a product BM25 singles out by every query word stays first (query_rewriter.known_item).
    known_item: bool = True
    # Hybrid: a query that names a brand keeps that brand's products first (query_rewriter.brand).
    brand_first: bool = True
    # None: a plain page. NEW_CURSOR: freeze the list and answer with next_cursor. Else a
    # next_cursor from an earlier page; the other fields are then taken from the cursor.
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {list(MODES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown blend method {self.method!r}; expected one of {list(METHODS)}")
        if self.page < 1 or self.size < 1:
            raise ValueError("page and size start at 1")
        if not 1 <= self.depth <= MAX_WINDOW:
            raise ValueError(f"depth must be between 1 and {MAX_WINDOW}, not {self.depth}")
        for leg, weight in (self.weights or {}).items():
            if not 0.0 <= weight <= 1.0:  # also refuses NaN
                raise ValueError(f"the {leg} weight must be between 0 and 1, not {weight}")
        if self.mode == "server_hybrid" and self.thresholds.on_legs:
            raise ValueError("minimum leg scores need the client-side blend (mode hybrid); server_hybrid "
                             "takes only the fused minimum")
        if self.page * self.size > MAX_WINDOW:
            raise ValueError(
                f"page {self.page} of size {self.size} reaches past the deepest window of {MAX_WINDOW} "
                "candidates per leg; narrow the query with filters"
            )

    @property
    def leg_weights(self) -> Mapping[str, float]:
        """The weights the blend uses: the request's, else :data:`DEFAULT_WEIGHTS` (the searcher fills in
        the model's stored weights before ranking, so this default only reaches callers that build
        engine requests themselves, such as the server-side hybrid query of a benchmark)."""
        return self.weights or DEFAULT_WEIGHTS

    def cursor_fields(self) -> dict[str, Any]:
        """What a cursor must remember to extend its list the way this request made it."""
        return {"query": self.query, "filters": vars(self.filters), "mode": self.mode, "method": self.method,
                "weights": dict(self.weights or {}), "rewrite": self.rewrite, "dfs": self.dfs,
                "thresholds": vars(self.thresholds), "known_item": self.known_item, "brand_first": self.brand_first}

    @classmethod
    def from_cursor_fields(cls, fields: Mapping[str, Any], **extra: Any) -> SearchRequest:
        return cls(**{**fields, "filters": Filters(**fields["filters"]),
                      "thresholds": Thresholds(**fields["thresholds"]), **extra})


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
    total: int                       # products in the ranked list the pages are cut from
    timings_ms: dict[str, float]
    removed: dict[str, int] = field(default_factory=dict)  # candidates each threshold removed
    total_is_lower_bound: bool = False  # a leg filled its window: a deeper one may add products
    facets: Facets = field(default_factory=dict)
    next_cursor: str | None = None
    weights: dict[str, float] = field(default_factory=dict)  # the blend's leg weights (the model's or the request's)


@dataclass
class _Ranked:
    """One ranking of a request: its tiers, their products' fields, and what the thresholds cut."""

    query: str
    tiers: list[list[Blended]]
    sources: dict[str, dict[str, Any]]
    removed: dict[str, int]
    more: bool
    depth: int

    @property
    def entries(self) -> list[Blended]:
        return [item for tier in self.tiers for item in tier]

    def facets(self) -> Facets:
        return facet_counts(self.sources.get(item.doc_id, {}) for item in self.tiers[0])


def _leg(response: Mapping[str, Any]) -> tuple[list[tuple[str, float]], dict[str, dict[str, Any]]]:
    hits = response["hits"]["hits"]
    return [(h["_id"], float(h["_score"])) for h in hits], {h["_id"]: h.get("_source", {}) for h in hits}


class HybridSearcher:
    """Hybrid BM25 + kNN search: each search asks ``target()`` for the index to search, and
    ``encoder(index)`` for the encoder of the model that made its vectors, so a searcher can follow
    an alias to a new index version (``system.System.searcher``) or stay on one index (:meth:`over`).
    The encoder is asked for only when a leg needs a query vector: a BM25 search keeps answering while
    an index's model cannot be loaded (:class:`indexer.models.ModelMismatch`). ``cursors`` (Redis,
    in ``System``) keeps the lists of cursor searches; without it a cursor is refused."""

    def __init__(
        self, engine: SearchEngine, target: Callable[[], str], encoder: Callable[[str], Encoder],
        cursors: CursorStore | None = None,
        breadth: Callable[[str], int | None] = lambda index: None,
        weights: Callable[[str], Mapping[str, float] | None] = lambda index: None,
        oversample: Callable[[str], float | None] = lambda index: None,
    ) -> None:
        self.engine = engine
        self.target = target
        self.encoder = encoder
        self.cursors = cursors
        self.breadth = breadth  # index -> the kNN leg's HNSW candidates (query_rewriter.knn_breadth)
        self.weights = weights  # index -> the blend weights stored with its model (None: DEFAULT_WEIGHTS)
        self.oversample = oversample  # index -> float rescoring of its int8 vectors (query_rewriter.knn_breadth)

    @classmethod
    def over(cls, engine: SearchEngine, encoder: Encoder, index: str, candidates: int | None = None,
             weights: Mapping[str, float] | None = None, oversample: float | None = None) -> HybridSearcher:
        """A searcher of one index (or alias) with one encoder for queries, a fixed kNN breadth and fixed
        blend weights: pass the model's stored ones (:func:`acebert.loading.blend_weights`) for the hybrid
        a deployment of that model serves; None blends with ``DEFAULT_WEIGHTS``."""
        return cls(engine, lambda: index, lambda _: encoder, breadth=lambda _: candidates, weights=lambda _: weights,
                   oversample=lambda _: oversample)

    def search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if request.cursor not in (None, NEW_CURSOR):
            return self._continue(request, started, timings)
        index = self.target()
        if request.weights is None:
            request = replace(request, weights=dict(self.weights(index) or DEFAULT_WEIGHTS))
        offset = (request.page - 1) * request.size
        depths = tier_depths(request.depth, offset + request.size, MAX_WINDOW)
        ranked = self._rank(index, request, depths, timings)
        entries = ranked.entries
        end = offset + request.size
        hits = [_hit(item, ranked.sources.get(item.doc_id, {})) for item in entries[offset:end]]
        facets = ranked.facets()
        next_cursor = None
        if request.cursor == NEW_CURSOR:
            if self.cursors is None:
                raise ValueError("cursors need the search service's Redis (System.searcher); page with page= here")
            state = CursorState(request.cursor_fields(), index, ranked.depth, request.depth, ranked.more,
                                entries, facets)
            if end < len(entries) or _can_deepen(state):
                next_cursor = format_cursor(self.cursors.create(state), end)
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResponse(query=ranked.query, hits=hits, total=len(entries), timings_ms=timings,
                              removed=ranked.removed, total_is_lower_bound=ranked.more, facets=facets,
                              next_cursor=next_cursor, weights=dict(request.leg_weights))

    def _continue(self, request: SearchRequest, started: float, timings: dict[str, float]) -> SearchResponse:
        """The page of a stored list at the cursor's offset, deepening the list when it runs out."""
        if self.cursors is None:
            raise ValueError("cursors need the search service's Redis (System.searcher)")
        token, offset = parse_cursor(request.cursor or "")
        state = self.cursors.get(token)
        if state is None:
            raise ValueError("cursor expired or unknown (cursors last 10 minutes after their last page): "
                             "search again without it")
        end = offset + request.size
        if end > len(state.entries) and _can_deepen(state):
            state = self._deepen(token, state, end, timings)
        page = state.entries[offset:end]
        t = time.perf_counter()
        sources = self._current_sources(state.index, [item.doc_id for item in page])
        timings["fetch"] = (time.perf_counter() - t) * 1000
        hits = [_hit(item, sources[item.doc_id]) for item in page if item.doc_id in sources]
        more = end < len(state.entries) or _can_deepen(state)
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResponse(query=state.request["query"], hits=hits, total=len(state.entries),
                              timings_ms=timings, removed={"gone": len(page) - len(hits)},
                              total_is_lower_bound=state.more, facets=state.facets,
                              next_cursor=format_cursor(token, end) if more else None,
                              weights=dict(state.request["weights"]))

    def _current_sources(self, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The products' fields as they are now; a product deleted since the first page is absent."""
        if not ids:
            return {}
        found = self.engine.mget(index, ids, source_excludes=UNSHOWN_FIELDS)
        return {doc["_id"]: doc["_source"] for doc in found.get("docs", [])
                if doc.get("found") and not doc["_source"].get("deleted")}

    def _deepen(self, token: str, state: CursorState, needed: int, timings: dict[str, float]) -> CursorState:
        """Rank the cursor's search one or more tiers deeper and append only what the list lacks."""
        assert self.cursors is not None
        request = SearchRequest.from_cursor_fields(state.request, depth=state.first_depth)
        depths = tier_depths(state.first_depth, needed, MAX_WINDOW)
        ranked = self._rank(self.target(), request, depths, timings)

        def append(current: CursorState) -> CursorState:
            held = {item.doc_id for item in current.entries}
            added = [item for item in ranked.entries if item.doc_id not in held]
            deeper = ranked.depth > current.depth
            return replace(current, entries=current.entries + added, depth=max(current.depth, ranked.depth),
                           more=ranked.more if deeper else current.more)

        updated = self.cursors.update(token, append)
        if updated is None:
            raise ValueError("cursor expired while it was being extended: search again without it")
        return updated

    def _rank(self, index: str, request: SearchRequest, depths: list[int], timings: dict[str, float]) -> _Ranked:
        """The request's tiers over ``depths``, each leg asked once for the deepest."""
        removed: dict[str, int] = {}
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
        depth = depths[-1]

        vector = None
        if request.mode != "bm25":
            t = time.perf_counter()
            vector = self.encoder(index).encode_queries([text])[0].tolist()
            timings["encode"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        if request.mode == "server_hybrid":
            # The engine blends one window; a deeper one is a new tier of the same kind.
            tiers: list[list[Blended]] = []
            sources: dict[str, dict[str, Any]] = {}
            seen: set[str] = set()
            for tier_depth in depths:
                blended, tier_sources = self._server_hybrid(index, request, text, clauses, vector, tier_depth)
                tiers.append([item for item in blended if item.doc_id not in seen])
                seen.update(tier_sources)
                sources.update(tier_sources)
            more = len(blended) >= depth
            timings["engine"] = (time.perf_counter() - t) * 1000
        else:
            bodies = {}
            if request.mode in ("bm25", "hybrid"):
                bodies["bm25"] = bm25_body(text, clauses, depth)
            if request.mode in ("knn", "hybrid"):
                bodies["knn"] = knn_body(self.engine, vector, clauses, depth, self.breadth(index),
                                         self.oversample(index))
            responses = self.engine.msearch(index, list(bodies.values()), dfs=request.dfs)
            timings["engine"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            legs, sources = {}, {}
            more = False
            for name, response in zip(bodies, responses):
                hits, leg_sources = _leg(response)
                more = more or len(hits) >= depth
                legs[name], removed[name] = cut_leg(hits, request.thresholds.for_leg(name))
                sources.update(leg_sources)
            weights = {name: request.leg_weights.get(name, 0.0) for name in legs}
            if len(legs) == 1:
                weights = {name: 1.0 for name in legs}
            tiers = blend_tiers(legs, weights, request.method, depths)
            if len(legs) == 2:
                titles = {pid: source.get("title") for pid, source in sources.items()}
                brands = {pid: source.get("brand") for pid, source in sources.items()}
                tiers[0] = word_rules(tiers[0], text, legs["bm25"], titles, brands, request.brand_first,
                                      request.known_item)
            timings["blend"] = (time.perf_counter() - t) * 1000

        removed["fused"] = 0
        for number, tier in enumerate(tiers):
            tiers[number], cut = cut_fused(tier, request.thresholds.fused)
            removed["fused"] += cut
        return _Ranked(text, tiers, sources, removed, more, depth)

    def _server_hybrid(
        self, index: str, request: SearchRequest, text: str, clauses: list[dict[str, Any]], vector: list[float] | None,
        depth: int,
    ) -> tuple[list[Blended], dict[str, dict[str, Any]]]:
        """The engine's own blend of the same two legs (OpenSearch neural-search's ``hybrid``)."""
        if not self.engine.supports_server_hybrid:
            raise ValueError(f"{self.engine.kind} here has no server-side hybrid query (neural-search)")
        query = server_hybrid_query(request, text, clauses, vector, depth, self.breadth(index), self.oversample(index))
        response = self.engine.server_hybrid_search(index, query)
        hits = response["hits"]["hits"]
        blended = [Blended(h["_id"], float(h["_score"])) for h in hits]
        return blended, {h["_id"]: h.get("_source", {}) for h in hits}


def word_rules(fused: Sequence[Blended], text: str, bm25: Leg, titles: Mapping[str, str | None],
               brands: Mapping[str, str | None], with_brand_first: bool = True, with_known_item: bool = True
               ) -> list[Blended]:
    """A hybrid blend after the rules that read the query's words in the BM25 leg's titles: a named brand's
    products first (:mod:`query_rewriter.brand`), then a known item on top (:mod:`query_rewriter.known_item`).

    ``text`` is the query as sent to the engine (rewritten); ``titles`` and ``brands`` (the events' brand
    fields, where sent) cover the blended products. One function, so that the relevance bench's offline
    fusion applies exactly what the searcher does.
    """
    ranked = list(fused)
    if with_brand_first:
        ranked = brand_first(ranked, brand_words(text, bm25, titles, brands), titles, brands)
    if with_known_item:
        # A shopper may name a known item's brand as its brand field spells it ("Quokkaware Kettle 3" for
        # "Quokka Steel Kettle 3"), so the rule reads the field's words with the title's (of the BM25 leg's
        # products, the only ones it reads).
        labels = titles
        if any(brands.get(pid) for pid, _ in bm25):
            labels = {pid: f"{brands.get(pid) or ''} {titles.get(pid) or ''}" for pid, _ in bm25}
        ranked = promote(ranked, known_item(text, bm25, labels))
    return ranked


def server_hybrid_query(
    request: SearchRequest, text: str, clauses: list[dict[str, Any]], vector: list[float] | None, depth: int,
    candidates: int | None, oversample: float | None = None,
) -> HybridQuery:
    """The engine-side blend of the same two legs the client-side hybrid asks for (its kNN leg as wide and as
    rescored), with the request's method and weights, returning the whole window of ``depth``
    (``dataclasses.replace(size=...)`` cuts a page)."""
    return HybridQuery(
        bm25_query=bm25_query(text, clauses),
        vector_field=VECTOR_FIELD,
        vector=vector or [],
        filters=clauses,
        depth=depth,
        method=request.method,
        weights=[request.leg_weights.get(leg, 0.0) for leg in ("bm25", "knn")],
        source=SOURCE,
        candidates=candidates,
        oversample=oversample,
    )


def _hit(item: Blended, source: dict[str, Any]) -> Hit:
    return Hit(item.doc_id, item.score, source, dict(item.raw), dict(item.normalized), dict(item.ranks))


def _can_deepen(state: CursorState) -> bool:
    """A deeper tier may add products: a leg filled the window, and the window can still grow."""
    return state.more and state.depth < MAX_WINDOW
