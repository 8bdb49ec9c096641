"""The pure half of ``bench.cluster`` and how the sizing guide renders its result; no engine needed."""
from __future__ import annotations

import pytest

from bench import cluster, scaling
from bench.cluster import (
    VARIANTS,
    Sample,
    dfs_finding,
    identical_share,
    interleaved,
    mean_overlap,
    measure,
    outcome_counts,
    overlap_at_k,
    percentile,
    same_scores,
    same_scores_share,
    window_p50_ms,
)


def test_overlap_ignores_order_and_counts_only_the_top_k() -> None:
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "a"], k=3) == 1.0
    assert overlap_at_k(["a", "b", "x"], ["a", "b", "c"], k=3) == 2 / 3
    assert overlap_at_k(["a", "b", "c", "d"], ["a", "b", "d", "c"], k=2) == 1.0
    assert overlap_at_k(list("abcdefghijk"), list("abcdefghijz")) == 1.0  # the 11th is past k = 10


def test_overlap_of_short_and_empty_lists() -> None:
    assert overlap_at_k([], []) == 1.0
    assert overlap_at_k(["a"], []) == 0.0
    assert overlap_at_k(["a", "b"], ["a", "b"]) == 1.0  # fewer than k hits, the same ones
    assert overlap_at_k(["a"], ["a", "b"]) == 1 / 2     # the shorter list does not look closer


def test_mean_overlap_and_identical_share_over_the_reference_queries() -> None:
    reference = {"q1": ["a", "b"], "q2": ["c", "d"]}
    rankings = {"q1": ["b", "a"], "q2": ["c", "x"], "q3": ["ignored"]}
    assert mean_overlap(rankings, reference) == (1.0 + 0.5) / 2
    assert identical_share(rankings, reference) == 0.0
    assert identical_share(reference, reference) == 1.0
    with pytest.raises(ValueError):
        mean_overlap(rankings, {})


def test_interleaving_asks_every_variant_each_query_and_rotates_who_goes_first() -> None:
    order = interleaved(("A", "B", "C"), queries=2, rounds=2)
    assert len(order) == 3 * 2 * 2
    assert [v for r, q, v in order if (r, q) == (0, 0)] == ["A", "B", "C"]
    assert [v for r, q, v in order if (r, q) == (0, 1)] == ["B", "C", "A"]
    assert [v for r, q, v in order if (r, q) == (1, 0)] == ["B", "C", "A"]
    firsts = [order[i][2] for i in range(0, len(order), 3)]
    assert set(firsts) == {"A", "B", "C"}
    for variant in "ABC":
        assert sum(v == variant for _, _, v in order) == 4


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_outcomes_are_counted_by_the_time_each_search_was_sent() -> None:
    samples = [Sample(1.0, "answered", 10.0), Sample(2.0, "failed", 1.0, "boom"), Sample(2.5, "empty", 5.0),
               Sample(3.0, "answered", 30.0), Sample(4.0, "answered", 20.0)]
    assert outcome_counts(samples) == {"answered": 3, "empty": 1, "failed": 1}
    assert outcome_counts(samples, 2.0, 4.0) == {"answered": 1, "empty": 1, "failed": 1}  # end excluded
    assert outcome_counts(samples, end=2.0) == {"answered": 1, "empty": 0, "failed": 0}
    assert window_p50_ms(samples, 0.0, 10.0) == 20.0  # answered only
    assert window_p50_ms(samples, 2.0, 2.9) is None


def test_measure_rows_carry_unit_and_note_only_when_given() -> None:
    assert measure("x", 1) == {"measure": "x", "value": 1}
    assert measure("y", 2.5, "ms", "n") == {"measure": "y", "value": 2.5, "unit": "ms", "note": "n"}


def _numbers(ndcg_dfs: float, overlap_dfs: float) -> dict:
    single, default, dfs = VARIANTS
    return dict(products=12917, ndcg={single: 0.5, default: 0.495, dfs: ndcg_dfs},
                overlap={default: 0.9, dfs: overlap_dfs}, identical={default: 0.4, dfs: overlap_dfs},
                p50_ms={single: 20.0, default: 22.0, dfs: 26.4})


def test_finding_says_dfs_closes_the_gap_only_when_the_numbers_do() -> None:
    closed = dfs_finding(**_numbers(0.5, 1.0))
    assert "closes the gap" in closed and "12,917 products" in closed
    assert "90.0%" in closed and "+4.4 ms, +20%" in closed and "0.4950 against 0.5000" in closed
    narrowed = dfs_finding(**_numbers(0.499, 0.97))
    assert "narrows the gap without closing it" in narrowed and "closes the gap" not in narrowed
    assert "does not bring" in dfs_finding(**_numbers(0.495, 0.8))
    assert "much more than the quality" in closed


def test_finding_names_a_real_ndcg_cost_of_per_shard_statistics() -> None:
    numbers = _numbers(0.5, 1.0)
    numbers["ndcg"] = {**numbers["ndcg"], VARIANTS[1]: 0.47}
    assert "cost 0.0300 nDCG@10" in dfs_finding(**numbers)


def test_tiny_runs_write_to_a_temporary_directory_not_the_results() -> None:
    args = cluster.parse_args(["--tiny"])
    assert args.results == cluster.TINY_OUTPUT and args.limit_products == cluster.TINY_PRODUCTS
    assert args.rounds == 1 and args.events <= 60
    args = cluster.parse_args(["--limit-products", "3000"])
    assert args.results is None and args.limit_products == 3000
    assert args.queries == args.catalog / "queries_test.tsv" and args.qrels == args.catalog / "qrels_test.tsv"


def test_the_guide_renders_a_cluster_result_with_its_command_machine_and_finding() -> None:
    result = {
        "machine": {"nproc": 2, "cpu": "AMD EPYC", "memory_gib": 23.5}, "commit": "abc1234",
        "command": "python -m bench.cluster", "setup": "2 nodes", "products": 12917,
        "measurements": [measure("nDCG@10, 1 shard", 0.5), measure("kill to queue drained", 3.2, "s", "ok"),
                         measure("events lost", 0), measure("searches", "10 / 0 / 0")],
        "finding": "dfs closes the gap.",
    }
    text = scaling.cluster_section(result)
    assert "`python -m bench.cluster` at commit `abc1234` on 2 CPU cores (AMD EPYC), 23.5 GiB RAM: 2 nodes." in text
    assert "| nDCG@10, 1 shard | 0.5 |  |" in text
    assert "| kill to queue drained | 3.2 s | ok |" in text
    assert "| events lost | 0 |  |" in text and "| searches | 10 / 0 / 0 |  |" in text
    assert "dfs closes the gap." in text
    assert "| `products` | 12917 |" in text  # keys outside the table are still shown
    assert "machine.nproc" not in text


def test_finding_points_at_the_knn_leg_when_dfs_makes_bm25_match() -> None:
    text = dfs_finding(**_numbers(0.502, 0.99), legs={"bm25": 0.93, "bm25 dfs": 1.0, "knn": 0.97},
                       knn_ndcg={"1 shard": 0.40, "2 shards": 0.41})
    assert "narrows the gap" in text
    assert "goes from 93.0% to 100.0% overlap with one shard." in text
    assert "still sees differently is the kNN leg (top-10 overlap 97.0%)" in text
    assert "0.4100 on 2 shards, 0.4000 on 1" in text and "ties" not in text
    unexplained = dfs_finding(**_numbers(0.502, 0.99), legs={"bm25": 0.93, "bm25 dfs": 0.98, "knn": 1.0})
    assert "Leg by leg" in unexplained and "does all it can" not in unexplained


def test_same_scores_compares_score_lists_score_for_score() -> None:
    assert same_scores([3.0, 2.0, 2.0], [3.0, 2.0, 2.0 + 1e-7])
    assert not same_scores([3.0, 2.0], [3.0, 2.1])
    assert not same_scores([3.0, 2.0], [3.0])
    assert same_scores([], [])
    assert same_scores_share({"q1": [1.0], "q2": [2.0]}, {"q1": [1.0], "q2": [2.5]}) == 0.5


def test_finding_calls_the_remaining_bm25_difference_ties_only_when_the_scores_match() -> None:
    legs = {"bm25": 0.85, "bm25 dfs": 1.0, "knn": 0.99, "bm25 dfs top-100": 0.88, "bm25 dfs same scores": 1.0}
    text = dfs_finding(**_numbers(0.502, 0.99), legs=legs)
    assert "top-100 scores equal the single shard's for every query" in text
    assert "is ties at the BM25 leg's top-100 cut (overlap 88.0%" in text and "and the kNN leg" in text
    assert "ties" not in dfs_finding(**_numbers(0.502, 0.99), legs={**legs, "bm25 dfs same scores": 0.9})
