"""The relevance benchmark's evaluation code on toy data with hand-computed answers (no engines)."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pytest

from acebert.blend_choice import best_setting
from bench import relevance_runs
from bench.relevance import load_split, parse_model, parse_models
from bench.relevance_eval import (
    NO_RESULTS,
    bootstrap_ci,
    paired_p_value,
    per_query,
    score,
    to_run,
    wins_and_losses,
)
from bench.relevance_markdown import END, PLACEHOLDER, START, kept_discussion, render
from bench.relevance_runs import (
    BREADTH_GRID,
    WEIGHT_GRID,
    Answer,
    Queries,
    breadth_sweep,
    fuse,
    model_systems,
    narrowed,
)
from bench.relevance_stack import IndexSpec, spec_events
from engines.base import SearchEngine
from query_rewriter.blend import METHODS, blend, leg_weights
from tests.unit.test_query_cache import CountingEncoder

# q1: graded, both grade-2 products found; q2: the one relevant product at rank 3; q3: nothing found.
QRELS = {"q1": {"a": 2, "b": 1, "c": 2}, "q2": {"d": 2}, "q3": {"e": 2, "f": 1}}
RANKINGS = {"q1": ["a", "x", "b", "c"], "q2": ["x", "y", "d"], "q3": []}
# nDCG@10 uses the grade as the gain: DCG = sum grade / log2(rank + 1).
NDCG_Q1 = (2 / math.log2(2) + 1 / math.log2(4) + 2 / math.log2(5)) / (2 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4))
NDCG_Q2 = (2 / math.log2(4)) / (2 / math.log2(2))


def test_to_run_scores_reproduce_the_given_order_and_keep_empty_answers():
    run = to_run(RANKINGS)
    assert sorted(run["q1"], key=run["q1"].get, reverse=True) == ["a", "x", "b", "c"]
    assert run["q3"] == {NO_RESULTS: 0.0}


def test_toy_metrics_match_hand_computed_values():
    values = per_query(QRELS, to_run(RANKINGS))
    assert values == pytest.approx({"q1": NDCG_Q1, "q2": NDCG_Q2, "q3": 0.0})
    scores = score(QRELS, to_run(RANKINGS), slice_ids={"q2", "not-judged"})
    assert scores.means["ndcg@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 3)
    assert scores.means["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # grade 2 relevant: ranks 1, 3, none
    assert scores.means["recall@100"] == pytest.approx(2 / 3)
    assert scores.slice_queries == 1 and scores.slice_ndcg == pytest.approx(NDCG_Q2)
    assert scores.per_query_ndcg == values


def test_empty_slice_has_no_mean():
    assert score(QRELS, to_run(RANKINGS), slice_ids=set()).slice_ndcg is None


def test_bootstrap_ci_of_identical_values_has_zero_width():
    assert bootstrap_ci([0.4] * 20) == pytest.approx((0.4, 0.4))


def test_bootstrap_ci_of_two_values_spans_the_possible_means():
    # Resampling [0, 1] gives means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], confidence=0.4) == (0.5, 0.5)


def test_bootstrap_ci_is_reproducible_with_its_seed():
    values = np.random.default_rng(7).random(50)
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci(values, seed=1) != bootstrap_ci(values, seed=2)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_test_tells_identical_runs_from_a_clearly_better_one():
    qrels = {f"q{i}": {"good": 2} for i in range(30)}
    better = to_run({qid: ["good", "bad"] for qid in qrels})
    worse = to_run({qid: ["bad", "good"] if i % 3 else ["bad"] for i, qid in enumerate(qrels)})
    assert paired_p_value(qrels, better, better) == 1.0
    assert paired_p_value(qrels, better, worse) < 0.01
    assert paired_p_value(qrels, better, worse, stat_test="student") < 0.01


def test_wins_and_losses_are_the_largest_changes_each_way():
    baseline = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}
    system = {"a": 0.9, "b": 0.6, "c": 0.5, "d": 0.1}
    wins, losses = wins_and_losses(baseline, system, top=1)
    assert [(c.query_id, round(c.delta, 3)) for c in wins] == [("a", 0.4)]
    assert [(c.query_id, round(c.delta, 3)) for c in losses] == [("d", -0.4)]
    wins, _ = wins_and_losses(baseline, system)
    assert [c.query_id for c in wins] == ["a", "b"]  # the tie on "c" is neither


def test_fuse_is_the_search_modules_blend():
    bm25 = Answer(["a", "b"], [("a", 9.0), ("b", 3.0)])
    knn = Answer(["c", "a"], [("c", 0.9), ("a", 0.8)])
    for method in METHODS:
        expected = blend({"bm25": bm25.leg, "knn": knn.leg}, {"bm25": 0.3, "knn": 0.7}, method)
        assert fuse("shoes", bm25, knn, method, 0.3) == [b.doc_id for b in expected]
    assert all(sum(leg_weights(w).values()) == pytest.approx(1.0) for w in WEIGHT_GRID)


def test_a_narrowed_leg_keeps_its_top_and_the_fused_ranking_loses_only_what_it_cut():
    bm25 = Answer(["a", "b"], [("a", 9.0), ("b", 3.0)], {"a": "A", "b": "B"})
    knn = {"q": Answer(["c", "a", "d"], [("c", 0.9), ("a", 0.8), ("d", 0.1)])}
    cut = narrowed(knn, 2)["q"]
    assert cut.leg == [("c", 0.9), ("a", 0.8)] and cut.ranked == knn["q"].ranked
    # min-max over the cut leg: c 1.0 and a 0.0 for kNN, a 1.0 and b 0.0 for BM25; BM25 weight 0.3:
    # c = 0.7 * 1.0, a = 0.3 * 1.0 + 0.7 * 0.0, b = 0.0
    assert fuse("x", bm25, cut, "min_max", 0.3) == ["c", "a", "b"]
    assert "d" in fuse("x", bm25, knn["q"], "min_max", 0.3)


class FakeEngine(SearchEngine):
    """Canned legs: BM25 favours "b", kNN favours "a"; the dev judgments below want "a" first."""

    kind = "fake"
    LEGS = {"bm25": [("b", 8.0), ("c", 7.0), ("a", 1.0)], "knn": [("a", 0.9), ("d", 0.5), ("b", 0.4)]}

    def msearch(self, index: str, bodies: Sequence[Mapping[str, Any]], dfs: bool = False) -> list[dict[str, Any]]:
        legs = [self.LEGS["knn" if "fake_knn" in body else "bm25"][:body["size"]] for body in bodies]
        return [{"hits": {"hits": [{"_id": i, "_score": s, "_source": {}} for i, s in leg]}} for leg in legs]

    def knn_query(self, field: str, vector: Sequence[float], k: int, filters: Any,
                  candidates: int | None = None, oversample: float | None = None) -> dict[str, Any]:
        return {"size": k, "fake_knn": True}

    def _request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no REST calls expected")

    def _streaming_bulk(self) -> Any:
        raise AssertionError("no bulk expected")

    def vector_mapping(self, dimension: int, quantized: bool = False) -> dict[str, Any]:
        return {}

    def text_analyzer(self) -> dict[str, Any]:
        return {}

    def _translate(self, exc: Exception) -> Any:
        return exc

    def open_point_in_time(self, index: str, keep_alive: str) -> str:
        raise AssertionError("no point in time expected")

    def close_point_in_time(self, pit_id: str) -> None:
        raise AssertionError("no point in time expected")


def test_model_systems_choose_weights_on_dev_and_match_the_searcher():
    queries = Queries(test={"t1": "shoes", "t2": "bags"}, dev={"d1": "tops"})
    dev_qrels = {"d1": {"a": 2}}

    def dev_ndcg(rankings: dict[str, list[str]]) -> dict[str, float]:
        return per_query(dev_qrels, to_run(rankings))

    systems, checked = model_systems(FakeEngine("http://fake"), CountingEncoder(), "idx", "fake", "Fake model",
                                     queries, dev_ndcg, baseline_key="bm25/project")
    by_key = {s.key: s for s in systems}
    assert [s.family for s in systems] == ["BM25", "Dense", "Hybrid", "Hybrid", "Hybrid",
                                           "Hybrid variant", "Hybrid variant", "Hybrid variant", "Hybrid variant"]
    assert by_key["fake/bm25/project"].test["t1"] == ["b", "c", "a"]
    assert by_key["fake/dense/fake"].dev == {"d1": ["a", "d", "b"]}
    min_max = by_key["fake/hybrid/fake/min_max"]
    assert min_max.bm25_weight == best_setting(min_max.dev_curve)
    assert min_max.dev_curve[min_max.bm25_weight] == max(min_max.dev_curve.values())
    assert min_max.dev["d1"][0] == "a"  # the chosen weight puts the dev answer first
    assert by_key["fake/hybrid/fake/rrf"].dev_curve.keys() == {0.5}
    assert checked == 3 * len(queries.test)  # every method, every test query (at most 3 each)
    # One dev query is too few to learn from: the per-query row keeps the global weight everywhere.
    learned = by_key["fake/hybrid/fake/min_max/per-query"]
    assert learned.weight_model is not None and learned.weight_model["alpha"] is None
    assert learned.test == min_max.test


def test_the_narrowed_variants_blend_the_top_of_a_leg(monkeypatch):
    monkeypatch.setattr(relevance_runs, "NARROW_DEPTH", 1)
    queries = Queries(test={"t1": "shoes"}, dev={"d1": "tops"})
    systems, _ = model_systems(FakeEngine("http://fake"), CountingEncoder(), "idx", "fake", "Fake model", queries,
                               lambda rankings: {qid: 0.0 for qid in rankings})
    by_key = {s.key: s for s in systems}
    weight = by_key["fake/hybrid/fake/min_max"].bm25_weight
    assert weight is not None
    bm25, knn = FakeEngine.LEGS["bm25"], FakeEngine.LEGS["knn"]
    # A kNN leg of one keeps "a" alone: "d" is gone, and "b" and "c" come from the BM25 leg only.
    assert by_key["fake/hybrid/fake/min_max/knn-1"].test["t1"] == fuse(
        "shoes", Answer([], bm25), Answer([], knn[:1]), "min_max", weight)
    assert "d" not in by_key["fake/hybrid/fake/min_max/knn-1"].test["t1"]
    assert by_key["fake/hybrid/fake/min_max/bm25-1"].test["t1"] == fuse(
        "shoes", Answer([], bm25[:1]), Answer([], knn), "min_max", weight)


class ReorderingEngine(FakeEngine):
    """An engine whose narrower answer is not the top of its wider one (as no real engine should do)."""

    def msearch(self, index: str, bodies: Sequence[Mapping[str, Any]], dfs: bool = False) -> list[dict[str, Any]]:
        responses = super().msearch(index, bodies, dfs)
        if bodies[0]["size"] == relevance_runs.NARROW_DEPTH:
            for response in responses:
                response["hits"]["hits"].reverse()
        return responses


def test_the_narrowed_variants_refuse_an_engine_whose_narrower_leg_is_not_the_top_of_the_wider(monkeypatch):
    monkeypatch.setattr(relevance_runs, "NARROW_DEPTH", 2)
    queries = Queries(test={"t1": "shoes"}, dev={"d1": "tops"})
    with pytest.raises(RuntimeError, match="narrowed variants are wrong"):
        model_systems(ReorderingEngine("http://fake"), CountingEncoder(), "idx", "fake", "Fake model", queries,
                      lambda rankings: {qid: 0.0 for qid in rankings})


def test_parse_model_names_the_index_and_whether_images_are_encoded(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert parse_model("minilm") == IndexSpec("minilm", "minilm")
    assert parse_model(f"acebert:{tmp_path}") == IndexSpec("acebert", str(tmp_path), with_images=True)
    assert parse_model(f"acebert-title:{tmp_path}").with_images is False
    for bad in ("acebert", f"acebert:{tmp_path / 'missing'}", "bert:x"):
        with pytest.raises(ValueError):
            parse_model(bad)


def test_parse_models_refuses_a_kind_given_twice(tmp_path):
    """Indices are named by kind: two acebert checkpoints in one run would share one index."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    a, b = tmp_path / "a", tmp_path / "b"
    assert [spec.name for spec in parse_models(f"minilm, acebert:{a},acebert-title:{a}")] == [
        "minilm", "acebert", "acebert-title"]
    with pytest.raises(ValueError, match="acebert given twice"):
        parse_models(f"acebert:{a},acebert:{b}")


def test_title_only_events_carry_no_image():
    events = [{"product_id": "1", "title": "Red Top", "image": "/x/1.jpg"}]
    assert spec_events(IndexSpec("t", "m", with_images=False), events) == [{"product_id": "1", "title": "Red Top"}]
    assert spec_events(IndexSpec("i", "m"), events) == events


def test_load_split_keeps_catalogued_products_and_limits_queries(tmp_path):
    (tmp_path / "q.tsv").write_text("query_id\tquery\tkind\nq1\tred top\tcolour\nq2\tblue bag\tcolour\nq3\tx\tusage\n")
    (tmp_path / "r.tsv").write_text("query_id\tproduct_id\tgrade\nq1\t1\t2\nq1\t9\t2\nq2\t2\t2\nq3\t9\t2\n")
    split = load_split(tmp_path / "q.tsv", tmp_path / "r.tsv", {"1", "2"}, limit=None)
    assert split.qrels == {"q1": {"1": 2}, "q2": {"2": 2}}  # product 9 is not catalogued; q3 has nothing left
    assert split.queries == {"q1": "red top", "q2": "blue bag"} and split.kinds["q1"] == "colour"
    assert list(load_split(tmp_path / "q.tsv", tmp_path / "r.tsv", {"1", "2"}, limit=1).queries) == ["q1"]


def test_the_breadth_sweep_asks_the_dense_leg_once_per_breadth_and_query():
    asked: list[int | None] = []

    class SweptEngine(FakeEngine):
        def knn_query(self, field: str, vector: Sequence[float], k: int, filters: Any,
                      candidates: int | None = None, oversample: float | None = None) -> dict[str, Any]:
            asked.append(candidates)
            return super().knn_query(field, vector, k, filters, candidates, oversample)

    queries = Queries(test={"t1": "shoes"}, dev={"d1": "tops"})
    runs = breadth_sweep(SweptEngine("http://fake"), CountingEncoder(), "idx", "fake", "Fake model", queries)
    assert [(r.model, r.candidates) for r in runs] == [("Fake model", c) for c in BREADTH_GRID]
    assert asked == [c for c in BREADTH_GRID for _ in range(2)]  # dev and test query at each breadth
    assert runs[0].test == {"t1": ["a", "d", "b"]} and runs[0].dev == {"d1": ["a", "d", "b"]}


def test_report_keeps_the_hand_written_discussion(tmp_path):
    report = tmp_path / "relevance.md"
    assert kept_discussion(report) == PLACEHOLDER
    report.write_text(f"# old\n\n{START}\nThe hybrid wins on colour queries.\n{END}\n")
    assert kept_discussion(report) == "The hybrid wins on colour queries."
    text = render(_payload(), kept_discussion(report))
    assert f"{START}\nThe hybrid wins on colour queries.\n{END}" in text
    assert "| fake | BM25 | BM25, project analyzer | – | 0.500 [0.400, 0.600] |" in text
    assert "kNN breadth: 400 HNSW candidates per query, the searcher's breadth" in text


def test_report_states_a_fixed_knn_breadth() -> None:
    payload = _payload()
    payload["setup"].update(candidates=2000, served=False)
    assert "kNN breadth: 2000 HNSW candidates per query (fixed" in render(payload, PLACEHOLDER)


def test_the_breadth_table_shows_test_and_dev_per_breadth_with_the_searchers_in_bold() -> None:
    payload = _payload()
    payload["knn_breadth"] = [
        {"engine": "fake", "model": "ACE-BERT", "candidates": c, "test_ndcg@10": t, "dev_ndcg@10": d,
         "test_recall@100": 0.9} for c, t, d in ((100, 0.887, 0.899), (400, 0.907, 0.906))]
    text = render(payload, PLACEHOLDER)
    assert "| Engine | Dense model | 100 candidates | 400 candidates |" in text
    assert "| fake | ACE-BERT | 0.887 / 0.899 | **0.907 / 0.906** |" in text


def _payload() -> dict[str, Any]:
    test = {"ndcg@10": 0.5, "ndcg@10_ci95": [0.4, 0.6], "recall@100": 0.9, "mrr@10": 0.5,
            "colour_slice_ndcg@10": None}
    system = {"key": "fake/bm25/project", "engine": "fake", "family": "BM25", "label": "BM25, project analyzer",
              "index": "bench-minilm", "bm25_weight": None, "dev_ndcg@10": 0.45, "dev_curve": {}, "test": test}
    return {
        "command": "python -m bench.relevance", "wall_s": 60.0,
        "setup": {"products": 3, "products_with_image": 2, "catalog": "cat",
                  "test": {"queries": "qt", "qrels": "rt", "count": 1}, "dev": {"queries": "qd", "qrels": "rd", "count": 1},
                  "engines": ["fake"], "models": {}, "depth": 100, "spot_checked_hybrid_answers": 0,
                  "candidates": 400, "served": True,
                  "weight_grid": [0.5], "colour_slice": {"attributes": None, "queries": 0}},
        "ingestion": [], "systems": [system], "comparisons": [],
    }
