"""The query half of the relevance benchmark: every query through the search module, then the systems.

Each query is sent once per index and leg (``mode="bm25"`` and ``mode="knn"`` of
:class:`~query_rewriter.search.HybridSearcher`, so the rewrite, request bodies and engine are
the production ones). Hybrid rankings for every method and weight are then fused from those two
legs with :func:`query_rewriter.blend.blend`, the very function the searcher calls: one engine
round trip per query and leg instead of one per weight setting. :func:`spot_check` proves the
shortcut by comparing it with the searcher's own ``mode="hybrid"`` answers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from tqdm import tqdm

from acebert.encoder import Encoder
from bench.relevance_eval import best_setting
from engines import SearchEngine
from query_rewriter.blend import METHODS, blend
from query_rewriter.search import HybridSearcher, SearchRequest

DEPTH = 100
WEIGHT_GRID: tuple[float, ...] = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""BM25 weights tried on dev for the weighted-sum methods; the kNN leg gets ``1 - w``."""
RRF_BM25_WEIGHT = 0.5
"""RRF is not tuned: equal leg weights, as OpenSearch's score-ranker processor applies it."""
METHOD_LABELS = {"min_max": "min-max + weighted sum", "z_score": "z-score + weighted sum", "rrf": "RRF (k=60)"}
SPOT_CHECK_QUERIES = 3

Rankings = dict[str, list[str]]
Leg = list[tuple[str, float]]
DevScore = Callable[[Rankings], float]


@dataclass(frozen=True)
class Answer:
    """One query's answer in one mode: the searcher's ranking, and the leg behind it."""

    ranked: list[str]
    leg: Leg  # (product id, raw engine score) in the leg's own rank order


@dataclass
class System:
    """One row of the table: a way of ranking, on one engine, with its rankings per query."""

    key: str
    engine: str
    family: str  # BM25 | Dense | Hybrid | Server hybrid
    label: str
    index: str
    test: Rankings
    dev: Rankings | None = None
    method: str | None = None
    bm25_weight: float | None = None
    dev_curve: dict[float, float] = field(default_factory=dict)  # BM25 weight -> dev nDCG@10


def weights(bm25_weight: float) -> dict[str, float]:
    return {"bm25": bm25_weight, "knn": round(1 - bm25_weight, 6)}


def ask(searcher: HybridSearcher, mode: str, text: str) -> Answer:
    """``text`` through the searcher in a single-leg mode, keeping the leg's raw scores and order."""
    response = searcher.search(SearchRequest(query=text, mode=mode, size=DEPTH, depth=DEPTH))  # type: ignore[arg-type]
    leg_name = "bm25" if mode == "bm25" else "knn"
    in_leg_order = sorted(response.hits, key=lambda hit: hit.ranks[leg_name])
    return Answer([hit.product_id for hit in response.hits],
                  [(hit.product_id, hit.leg_scores[leg_name]) for hit in in_leg_order])


def ask_all(searcher: HybridSearcher, mode: str, queries: Mapping[str, str], label: str) -> dict[str, Answer]:
    return {qid: ask(searcher, mode, text) for qid, text in tqdm(queries.items(), desc=label, unit="query")}


def fuse(bm25: Answer, knn: Answer, method: str, bm25_weight: float) -> list[str]:
    """The hybrid ranking the searcher would return for these two legs (top ``DEPTH``)."""
    fused = blend({"bm25": bm25.leg, "knn": knn.leg}, weights(bm25_weight), method)
    return [item.doc_id for item in fused[:DEPTH]]


def _rankings(answers: Mapping[str, Answer], query_ids: Sequence[str]) -> Rankings:
    return {qid: answers[qid].ranked for qid in query_ids}


def _fused(bm25: Mapping[str, Answer], knn: Mapping[str, Answer], query_ids: Sequence[str],
           method: str, bm25_weight: float) -> Rankings:
    return {qid: fuse(bm25[qid], knn[qid], method, bm25_weight) for qid in query_ids}


def spot_check(searcher: HybridSearcher, queries: Mapping[str, str], bm25: Mapping[str, Answer],
               knn: Mapping[str, Answer], method: str, bm25_weight: float) -> int:
    """Assert that fused legs equal ``HybridSearcher``'s own hybrid answers; returns queries checked."""
    checked = list(queries)[:SPOT_CHECK_QUERIES]
    for qid in checked:
        request = SearchRequest(query=queries[qid], mode="hybrid", method=method,
                                weights=weights(bm25_weight), size=DEPTH, depth=DEPTH)
        direct = [hit.product_id for hit in searcher.search(request).hits]
        if direct != fuse(bm25[qid], knn[qid], method, bm25_weight):
            raise RuntimeError(f"fused legs differ from HybridSearcher for {qid} ({method}, {bm25_weight}) "
                               f"on {searcher.target()[0]}: the benchmark's shortcut is wrong")
    return len(checked)


@dataclass(frozen=True)
class Queries:
    """The test queries that are reported and the dev queries that choose weights."""

    test: dict[str, str]
    dev: dict[str, str]

    @property
    def all(self) -> dict[str, str]:
        return {**self.dev, **self.test}


def bm25_system(engine: SearchEngine, index: str, label: str, answers: Mapping[str, Answer],
                queries: Queries, key: str) -> System:
    return System(f"{engine.kind}/{key}", engine.kind, "BM25", label, index,
                  _rankings(answers, list(queries.test)), _rankings(answers, list(queries.dev)))


def model_systems(
    engine: SearchEngine,
    encoder: Encoder,
    index: str,
    model: str,
    model_label: str,
    queries: Queries,
    dev_score: DevScore,
    baseline_key: str | None = None,
) -> tuple[list[System], int]:
    """Dense, client-side hybrid (weights chosen on dev) and, where offered, server-side hybrid rows.

    ``baseline_key`` also returns this index's BM25 leg as the "project analyzer" BM25 row.
    Returns the systems and how many hybrid answers were spot-checked against the searcher.
    """
    searcher = HybridSearcher.over(engine, encoder, index)
    bm25 = ask_all(searcher, "bm25", queries.all, f"{engine.kind}/{model} bm25")
    knn = ask_all(searcher, "knn", queries.all, f"{engine.kind}/{model} knn")
    systems = []
    if baseline_key:
        systems.append(bm25_system(engine, index, "BM25, project analyzer", bm25, queries, baseline_key))
    test_ids, dev_ids = list(queries.test), list(queries.dev)
    systems.append(System(f"{engine.kind}/dense/{model}", engine.kind, "Dense", model_label, index,
                          _rankings(knn, test_ids), _rankings(knn, dev_ids)))
    checked = 0
    for method in METHODS:
        grid = WEIGHT_GRID if method != "rrf" else (RRF_BM25_WEIGHT,)
        curve = {w: dev_score(_fused(bm25, knn, dev_ids, method, w)) for w in grid}
        chosen = best_setting(curve)
        systems.append(System(
            f"{engine.kind}/hybrid/{model}/{method}", engine.kind, "Hybrid",
            f"BM25 + {model_label}, {METHOD_LABELS[method]}", index,
            _fused(bm25, knn, test_ids, method, chosen), _fused(bm25, knn, dev_ids, method, chosen),
            method=method, bm25_weight=chosen, dev_curve=curve,
        ))
        checked += spot_check(searcher, queries.test, bm25, knn, method, chosen)
    if engine.supports_server_hybrid:
        systems += [server_system(searcher, system, queries) for system in systems if system.family == "Hybrid"]
    return systems, checked


def server_system(searcher: HybridSearcher, client: System, queries: Queries) -> System:
    """OpenSearch neural-search's ``hybrid`` query with the client-side row's method and dev-chosen weight."""
    method, bm25_weight = client.method, client.bm25_weight
    if method is None or bm25_weight is None:
        raise ValueError(f"{client.key} is not a client-side hybrid row")
    rankings: Rankings = {}
    for qid, text in tqdm(queries.test.items(), desc=f"{client.key} server-side", unit="query"):
        request = SearchRequest(query=text, mode="server_hybrid", method=method,
                                weights=weights(bm25_weight), size=DEPTH, depth=DEPTH)
        rankings[qid] = [hit.product_id for hit in searcher.search(request).hits]
    return System(client.key.replace("/hybrid/", "/server_hybrid/"), client.engine, "Server hybrid",
                  client.label.replace("BM25 + ", "neural-search hybrid: BM25 + "), client.index, rankings,
                  method=method, bm25_weight=bm25_weight)
