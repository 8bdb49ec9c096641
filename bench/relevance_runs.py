"""The query half of the relevance benchmark: every query through the search module, then the systems.

Each query is sent once per index and leg (``mode="bm25"`` and ``mode="knn"`` of
:class:`~query_rewriter.search.HybridSearcher`, so the rewrite, request bodies and engine are
the production ones). Hybrid rankings for every method and weight are then fused from those two
legs with :func:`query_rewriter.blend.blend`, the very function the searcher calls: one engine
round trip per query and leg instead of one per weight setting. :func:`spot_check` proves the
shortcut by comparing it with the searcher's own ``mode="hybrid"`` answers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from acebert.blend_choice import WEIGHT_GRID, best_setting
from acebert.encoder import Encoder
from engines import SearchEngine
from query_rewriter.blend import METHODS, blend, leg_weights
from query_rewriter.learn_weights import Example, learn
from query_rewriter.query_weights import query_features
from query_rewriter.rewrite import rewrite
from query_rewriter.search import HybridSearcher, SearchRequest, word_rules

DEPTH = 100
RRF_BM25_WEIGHT = 0.5
"""RRF is not tuned: equal leg weights, as OpenSearch's score-ranker processor applies it."""
METHOD_LABELS = {"min_max": "min-max + weighted sum", "z_score": "z-score + weighted sum", "rrf": "RRF (k=60)"}
SPOT_CHECK_QUERIES = 3
BREADTH_GRID = (100, 200, 400, 800)
"""kNN breadths (HNSW candidates) the dense leg is also asked at: 100 is OpenSearch's default for a
leg of 100 (Elasticsearch's is 200), 800 the searcher's breadth above 100,000 products."""

Rankings = dict[str, list[str]]
Leg = list[tuple[str, float]]
DevScores = Callable[[Rankings], Mapping[str, float]]
"""Per-query dev nDCG@10 of a set of rankings."""
LEARNED_METHOD = "min_max"
"""The method whose weight is also learned per query (the default blend)."""
NARROW_DEPTH = 50
"""A narrower leg for the variants that ask what the last half of a leg's window adds: the legs'
sources are a third of the hybrid's engine time (``bench.performance.query_paths``)."""


@dataclass(frozen=True)
class Answer:
    """One query's answer in one mode: the searcher's ranking, and the leg behind it."""

    ranked: list[str]
    leg: Leg  # (product id, raw engine score) in the leg's own rank order
    # the leg's titles and brand fields (the known-item and brand rules read them)
    titles: dict[str, str | None] = field(default_factory=dict)
    brands: dict[str, str | None] = field(default_factory=dict)


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
    weight_model: dict[str, Any] | None = None  # a per-query weight model, and how it was chosen


def ask(searcher: HybridSearcher, mode: str, text: str, depth: int = DEPTH) -> Answer:
    """``text`` through the searcher in a single-leg mode, keeping the leg's raw scores and order."""
    response = searcher.search(SearchRequest(query=text, mode=mode, size=depth, depth=depth))  # type: ignore[arg-type]
    leg_name = "bm25" if mode == "bm25" else "knn"
    in_leg_order = sorted(response.hits, key=lambda hit: hit.ranks[leg_name])
    return Answer([hit.product_id for hit in response.hits],
                  [(hit.product_id, hit.leg_scores[leg_name]) for hit in in_leg_order],
                  {hit.product_id: hit.source.get("title") for hit in in_leg_order},
                  {hit.product_id: hit.source.get("brand") for hit in in_leg_order})


def ask_all(searcher: HybridSearcher, mode: str, queries: Mapping[str, str], label: str) -> dict[str, Answer]:
    return {qid: ask(searcher, mode, text) for qid, text in tqdm(queries.items(), desc=label, unit="query")}


def fuse(text: str, bm25: Answer, knn: Answer, method: str, bm25_weight: float, with_known_item: bool = True
         ) -> list[str]:
    """The hybrid ranking the searcher would return for these two legs (top ``DEPTH``), with its brand
    and known-item rules (:mod:`query_rewriter.brand`, :mod:`query_rewriter.known_item`) applied to the
    query ``text``."""
    fused = blend({"bm25": bm25.leg, "knn": knn.leg}, leg_weights(bm25_weight), method)
    fused = word_rules(fused, rewrite(text).text, bm25.leg, {**knn.titles, **bm25.titles},
                       {**knn.brands, **bm25.brands}, with_known_item=with_known_item)
    return [item.doc_id for item in fused[:DEPTH]]


def features(text: str, bm25: Answer, knn: Answer) -> dict[str, float] | None:
    """The per-query weight model's features, from the text the searcher sends (rewritten)."""
    return query_features(rewrite(text).text, bm25.leg, knn.leg)


def narrowed(answers: Mapping[str, Answer], depth: int) -> dict[str, Answer]:
    """Each answer's leg cut to its top ``depth``: what a leg asked for ``depth`` hits returns, since the
    engines rank a leg the same whatever the number of hits asked (an HNSW search keeps the same
    candidates); :func:`spot_check_narrowed` checks that on every run."""
    return {qid: replace(answer, leg=answer.leg[:depth]) for qid, answer in answers.items()}


def _rankings(answers: Mapping[str, Answer], query_ids: Sequence[str]) -> Rankings:
    return {qid: answers[qid].ranked for qid in query_ids}


def _fused(texts: Mapping[str, str], bm25: Mapping[str, Answer], knn: Mapping[str, Answer],
           query_ids: Sequence[str], method: str, bm25_weight: float | Callable[[str], float],
           with_known_item: bool = True) -> Rankings:
    """Fused rankings of ``query_ids``; ``bm25_weight`` is one weight or a query id -> weight function."""
    weight_of = bm25_weight if callable(bm25_weight) else (lambda _: bm25_weight)
    return {qid: fuse(texts[qid], bm25[qid], knn[qid], method, weight_of(qid), with_known_item)  # type: ignore[arg-type]
            for qid in query_ids}


def spot_check(searcher: HybridSearcher, queries: Mapping[str, str], bm25: Mapping[str, Answer],
               knn: Mapping[str, Answer], method: str, bm25_weight: float) -> int:
    """Assert that fused legs equal ``HybridSearcher``'s own hybrid answers; returns queries checked."""
    checked = list(queries)[:SPOT_CHECK_QUERIES]
    for qid in checked:
        request = SearchRequest(query=queries[qid], mode="hybrid", method=method,
                                weights=leg_weights(bm25_weight), size=DEPTH, depth=DEPTH)
        direct = [hit.product_id for hit in searcher.search(request).hits]
        if direct != fuse(queries[qid], bm25[qid], knn[qid], method, bm25_weight):
            raise RuntimeError(f"fused legs differ from HybridSearcher for {qid} ({method}, {bm25_weight}) "
                               f"on {searcher.target()}: the benchmark's shortcut is wrong")
    return len(checked)


def spot_check_narrowed(searcher: HybridSearcher, queries: Mapping[str, str],
                        answers: Mapping[str, Mapping[str, Answer]], depth: int) -> None:
    """Assert that each leg asked for ``depth`` hits returns the top ``depth`` of the stored leg
    (:func:`narrowed`), on the first few queries."""
    checked = list(queries)[:SPOT_CHECK_QUERIES]
    for mode, legs in answers.items():
        for qid in checked:
            direct = ask(searcher, mode, queries[qid], depth).leg
            if [doc for doc, _ in direct] != [doc for doc, _ in legs[qid].leg[:depth]]:
                raise RuntimeError(f"the {mode} leg of {depth} differs from the top {depth} of the leg of {DEPTH} "
                                   f"for {qid} on {searcher.target()}: the narrowed variants are wrong")


@dataclass(frozen=True)
class Queries:
    """The test queries that are reported and the dev queries that choose weights."""

    test: dict[str, str]
    dev: dict[str, str]

    @property
    def all(self) -> dict[str, str]:
        return {**self.dev, **self.test}


@dataclass(frozen=True)
class BreadthRun:
    """The dense leg of one index asked at one kNN breadth."""

    engine: str
    model: str  # its label
    candidates: int
    test: Rankings
    dev: Rankings


def breadth_sweep(engine: SearchEngine, encoder: Encoder, index: str, model: str, model_label: str,
                  queries: Queries) -> list[BreadthRun]:
    """The dense leg at every breadth of :data:`BREADTH_GRID`.

    Why: how many candidates an HNSW search keeps decides how close it comes to exact search, and
    how far below it falls depends on how the graph happened to be built, so the searcher's breadth
    (:mod:`query_rewriter.knn_breadth`) is checked against relevance on every run, dev included.
    """
    runs = []
    for candidates in BREADTH_GRID:
        searcher = HybridSearcher.over(engine, encoder, index, candidates)
        answers = ask_all(searcher, "knn", queries.all, f"{engine.kind}/{model} knn, {candidates} candidates")
        runs.append(BreadthRun(engine.kind, model_label, candidates, _rankings(answers, list(queries.test)),
                               _rankings(answers, list(queries.dev))))
    return runs


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
    dev_scores: DevScores,
    baseline_key: str | None = None,
    candidates: int | None = None,
) -> tuple[list[System], int]:
    """Dense, client-side hybrid (weights chosen on dev) and, where offered, server-side hybrid rows,
    plus variants of the default blend: without the known-item rule, with per-query weights learned
    on dev (:mod:`query_rewriter.learn_weights`), and with either leg cut to :data:`NARROW_DEPTH`.

    ``baseline_key`` also returns this index's BM25 leg as the "project analyzer" BM25 row;
    ``candidates`` fixes the kNN leg's HNSW breadth (None: the searcher's own choice). Returns the
    systems and how many hybrid answers were spot-checked against the searcher.
    """
    searcher = HybridSearcher.over(engine, encoder, index, candidates)
    texts = queries.all
    bm25 = ask_all(searcher, "bm25", texts, f"{engine.kind}/{model} bm25")
    knn = ask_all(searcher, "knn", texts, f"{engine.kind}/{model} knn")
    systems = []
    if baseline_key:
        systems.append(bm25_system(engine, index, "BM25, project analyzer", bm25, queries, baseline_key))
    test_ids, dev_ids = list(queries.test), list(queries.dev)
    systems.append(System(f"{engine.kind}/dense/{model}", engine.kind, "Dense", model_label, index,
                          _rankings(knn, test_ids), _rankings(knn, dev_ids)))
    checked = 0
    variants = []
    for method in METHODS:
        grid = WEIGHT_GRID if method != "rrf" else (RRF_BM25_WEIGHT,)
        per_query = {w: dev_scores(_fused(texts, bm25, knn, dev_ids, method, w)) for w in grid}
        curve = {w: float(np.mean(list(values.values()))) for w, values in per_query.items()}
        chosen = best_setting(curve)
        label = f"BM25 + {model_label}, {METHOD_LABELS[method]}"
        key = f"{engine.kind}/hybrid/{model}/{method}"
        systems.append(System(
            key, engine.kind, "Hybrid", label, index,
            _fused(texts, bm25, knn, test_ids, method, chosen), _fused(texts, bm25, knn, dev_ids, method, chosen),
            method=method, bm25_weight=chosen, dev_curve=curve,
        ))
        checked += spot_check(searcher, queries.test, bm25, knn, method, chosen)
        if method == LEARNED_METHOD:
            variants.append(System(
                f"{key}/no-known-item", engine.kind, "Hybrid variant", f"{label}, without the known-item rule",
                index, _fused(texts, bm25, knn, test_ids, method, chosen, with_known_item=False),
                _fused(texts, bm25, knn, dev_ids, method, chosen, with_known_item=False),
                method=method, bm25_weight=chosen,
            ))
            variants.append(learned_system(key, label, engine.kind, index, texts, bm25, knn, queries, method,
                                           chosen, per_query))
            spot_check_narrowed(searcher, queries.test, {"bm25": bm25, "knn": knn}, NARROW_DEPTH)
            for leg, legs in (("kNN", (bm25, narrowed(knn, NARROW_DEPTH))),
                              ("BM25", (narrowed(bm25, NARROW_DEPTH), knn))):
                variants.append(System(
                    f"{key}/{leg.lower()}-{NARROW_DEPTH}", engine.kind, "Hybrid variant",
                    f"{label}, {leg} leg of {NARROW_DEPTH}", index,
                    _fused(texts, *legs, test_ids, method, chosen), _fused(texts, *legs, dev_ids, method, chosen),
                    method=method, bm25_weight=chosen,
                ))
    if engine.supports_server_hybrid:
        systems += [server_system(searcher, system, queries) for system in systems if system.family == "Hybrid"]
    return systems + variants, checked


def learned_system(key: str, label: str, engine: str, index: str, texts: Mapping[str, str],
                   bm25: Mapping[str, Answer], knn: Mapping[str, Answer], queries: Queries, method: str,
                   global_weight: float, per_query: Mapping[float, Mapping[str, float]]) -> System:
    """The default blend with a BM25 weight per query, learned on the dev queries' curves only."""
    examples = [Example(features(texts[qid], bm25[qid], knn[qid]), {w: per_query[w][qid] for w in per_query})
                for qid in queries.dev]
    model, table = learn(examples, global_weight)

    def weight_of(qid: str) -> float:
        return model.bm25_weight(features(texts[qid], bm25[qid], knn[qid]))

    test_weights = [weight_of(qid) for qid in queries.test]
    record = {**asdict(model), "cross_validation": {str(alpha): value for alpha, value in table.items()},
              "test_weights": {str(w): test_weights.count(w) for w in sorted(set(test_weights))}}
    return System(f"{key}/per-query", engine, "Hybrid variant", f"{label}, per-query weights (learned on dev)",
                  index, _fused(texts, bm25, knn, list(queries.test), method, weight_of),
                  _fused(texts, bm25, knn, list(queries.dev), method, weight_of), method=method,
                  bm25_weight=global_weight, weight_model=record)


def server_system(searcher: HybridSearcher, client: System, queries: Queries) -> System:
    """OpenSearch neural-search's ``hybrid`` query with the client-side row's method and dev-chosen weight."""
    method, bm25_weight = client.method, client.bm25_weight
    if method is None or bm25_weight is None:
        raise ValueError(f"{client.key} is not a client-side hybrid row")
    rankings: Rankings = {}
    for qid, text in tqdm(queries.test.items(), desc=f"{client.key} server-side", unit="query"):
        request = SearchRequest(query=text, mode="server_hybrid", method=method,
                                weights=leg_weights(bm25_weight), size=DEPTH, depth=DEPTH)
        rankings[qid] = [hit.product_id for hit in searcher.search(request).hits]
    return System(client.key.replace("/hybrid/", "/server_hybrid/"), client.engine, "Server hybrid",
                  client.label.replace("BM25 + ", "neural-search hybrid: BM25 + "), client.index, rankings,
                  method=method, bm25_weight=bm25_weight)
