"""Minimum scores on each leg and on the fused list (pure functions)."""
from __future__ import annotations

import math

import pytest

from query_rewriter.blend import Blended
from query_rewriter.search import SearchRequest
from query_rewriter.thresholds import Thresholds, cut_fused, cut_leg

LEG = [("a", 9.0), ("b", 4.0), ("c", 4.0), ("d", 1.5)]


def test_a_leg_keeps_scores_at_or_above_its_minimum_in_order():
    assert cut_leg(LEG, 4.0) == ([("a", 9.0), ("b", 4.0), ("c", 4.0)], 1)
    assert cut_leg(LEG, None) == (LEG, 0)
    assert cut_leg(LEG, 10.0) == ([], 4)


def test_the_fused_list_is_cut_on_the_blended_score():
    blended = [Blended("a", 0.9), Blended("b", 0.5), Blended("c", 0.1)]
    kept, removed = cut_fused(blended, 0.5)
    assert [b.doc_id for b in kept] == ["a", "b"] and removed == 1


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_a_minimum_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="finite number >= 0"):
        Thresholds(fused=bad)


def test_leg_minimums_need_the_client_side_blend():
    with pytest.raises(ValueError, match="client-side blend"):
        SearchRequest("shoes", mode="server_hybrid", thresholds=Thresholds(bm25=1.0))
    SearchRequest("shoes", mode="server_hybrid", thresholds=Thresholds(fused=0.5))  # the fused one is fine
