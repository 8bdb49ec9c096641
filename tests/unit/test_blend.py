"""Blending math: expected values are written as the formula, checkable by hand."""
import math

import pytest

from query_rewriter.blend import (
    METHODS, MIN_MAX_FLOOR, RRF_K, blend, leg_weights, min_max, rrf, weighted_normalized, z_score,
)

LEGS = {"bm25": [("a", 10.0), ("b", 6.0), ("c", 2.0)], "knn": [("b", 0.9), ("d", 0.8), ("a", 0.5)]}


def scores(blended):
    return {b.doc_id: b.score for b in blended}


def test_min_max_scales_to_unit_range_with_floor():
    assert min_max([10.0, 6.0, 2.0]) == [1.0, pytest.approx(0.5), MIN_MAX_FLOOR]


def test_min_max_single_hit_and_ties_score_one():
    assert min_max([3.2]) == [1.0]
    assert min_max([2.0, 2.0]) == [1.0, 1.0]
    assert min_max([]) == []


def test_z_score_is_standardised():
    values = z_score([1.0, 2.0, 3.0])
    std = math.sqrt(2 / 3)
    assert values == pytest.approx([-1 / std, 0.0, 1 / std])
    assert z_score([5.0, 5.0]) == [0.0, 0.0]


def test_weighted_min_max_blend_is_weighted_mean_of_normalised_scores():
    out = scores(weighted_normalized(LEGS, {"bm25": 0.7, "knn": 0.3}, "min_max"))
    knn_a = (0.5 - 0.5) / (0.9 - 0.5)  # lowest -> floor
    assert out["a"] == pytest.approx(0.7 * 1.0 + 0.3 * max(knn_a, MIN_MAX_FLOOR))
    assert out["b"] == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
    assert out["c"] == pytest.approx(0.7 * MIN_MAX_FLOOR + 0.3 * 0.0)  # c missing from knn
    assert out["d"] == pytest.approx(0.7 * 0.0 + 0.3 * (0.8 - 0.5) / (0.4))


def test_weights_are_a_mean_not_a_sum():
    a = scores(weighted_normalized(LEGS, {"bm25": 1, "knn": 1}))
    b = scores(weighted_normalized(LEGS, {"bm25": 5, "knn": 5}))
    assert a == pytest.approx(b)


def test_z_score_blend_counts_missing_as_legs_lowest():
    out = weighted_normalized(LEGS, {"bm25": 0.5, "knn": 0.5}, "z_score")
    by_id = {b.doc_id: b for b in out}
    knn_z = z_score([0.9, 0.8, 0.5])
    assert by_id["c"].score == pytest.approx(0.5 * z_score([10, 6, 2])[2] + 0.5 * min(knn_z))


def test_rrf_matches_formula():
    out = scores(rrf(LEGS, {"bm25": 1.0, "knn": 1.0}))
    assert out["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3))
    assert out["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert out["d"] == pytest.approx(1 / (RRF_K + 2))
    assert list(out)[0] == "b"


def test_hits_keep_per_leg_raw_scores_and_ranks():
    b = {x.doc_id: x for x in blend(LEGS, {"bm25": 0.5, "knn": 0.5})}["b"]
    assert b.raw == {"bm25": 6.0, "knn": 0.9}
    assert b.ranks == {"bm25": 2, "knn": 1}


def test_ties_break_by_doc_id_for_stable_pages():
    legs = {"bm25": [("z", 1.0), ("y", 1.0), ("x", 1.0)]}
    assert [b.doc_id for b in blend(legs, {"bm25": 1.0})] == ["x", "y", "z"]


@pytest.mark.parametrize("method", METHODS)
def test_empty_legs(method):
    assert blend({"bm25": [], "knn": []}, {"bm25": 0.5, "knn": 0.5}, method) == []
    only_knn = blend({"bm25": [], "knn": [("a", 0.4), ("b", 0.2)]}, {"bm25": 0.5, "knn": 0.5}, method)
    assert [b.doc_id for b in only_knn] == ["a", "b"]


@pytest.mark.parametrize("weights", [{"bm25": 1.0}, {"bm25": -1.0, "knn": 2.0}, {"bm25": 0.0, "knn": 0.0}])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        blend(LEGS, weights)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="min_max"):
        blend(LEGS, {"bm25": 1, "knn": 1}, "borda")


def test_duplicate_doc_in_a_leg_is_refused():
    with pytest.raises(ValueError, match="twice"):
        blend({"bm25": [("a", 1.0), ("a", 0.5)]}, {"bm25": 1.0})


def test_inputs_are_not_mutated():
    legs = {"bm25": [("a", 2.0), ("b", 1.0)]}
    blend(legs, {"bm25": 1.0})
    assert legs == {"bm25": [("a", 2.0), ("b", 1.0)]}


def test_leg_weights_give_knn_the_rest_rounded():
    assert leg_weights(0.7) == {"bm25": 0.7, "knn": 0.3}  # 1 - 0.7 is 0.30000000000000004 unrounded
    assert leg_weights(0.0) == {"bm25": 0.0, "knn": 1.0}
