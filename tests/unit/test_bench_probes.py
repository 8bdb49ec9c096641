"""The identifier probe's generator and metrics (pure functions)."""
from __future__ import annotations

import pytest

from bench.probes import RARE_DF, identifier_queries, known_item_scores, paired_differences, summarise

TITLES = {
    "1": "Asics Men Gel Pulse III Black Sports Shoes",
    "2": "Asics Men Gel Kayano Blue Sports Shoes",
    "3": "Nike Men Blue Sports Shoes",
    "4": "Nike Women Blue Sports Shoes",
    "5": "Puma Men Blue Sports Shoes",
    "6": "Puma Men Blue Sports Shoes",  # a twin title: no query can single it out
}


def test_a_query_is_the_brand_plus_the_rare_words_and_names_one_product():
    items = {item.product_id: item.query for item in identifier_queries(TITLES)}
    # "Gel" is in 2 titles (<= RARE_DF = 3), "Pulse" and "III" in one; "Men", "Sports", "Shoes" in 5-6.
    assert RARE_DF == 3
    assert items["1"] == "Asics Gel Pulse III"  # at most three distinctive words ("Black" is the 4th)
    assert items["2"] == "Asics Gel Kayano"
    assert items["4"] == "Nike Women"  # "Women" is rare here; Nike + Women holds for product 4 only
    assert "3" not in items  # nothing rare left: "Blue" is in 5 titles
    assert "5" not in items and "6" not in items


def test_the_order_and_the_limit_are_seeded():
    first = identifier_queries(TITLES, limit=2, seed=1)
    assert first == identifier_queries(TITLES, limit=2, seed=1) and len(first) == 2


def test_known_item_scores_are_success_at_one_and_reciprocal_rank_in_the_top_ten():
    assert known_item_scores("a", ["a", "b"]) == (1.0, 1.0)
    assert known_item_scores("a", ["b", "c", "a"]) == (0.0, 1 / 3)
    assert known_item_scores("a", [str(i) for i in range(10)] + ["a"]) == (0.0, 0.0)


def test_summaries_and_paired_differences():
    per_query = {"bm25": [(1.0, 1.0), (0.0, 0.5)], "knn": [(0.0, 0.5), (0.0, 0.0)]}
    assert summarise(per_query) == {"bm25": {"success@1": 0.5, "mrr@10": 0.75},
                                    "knn": {"success@1": 0.0, "mrr@10": 0.25}}
    diff = paired_differences(per_query, "bm25", "knn")
    assert diff["mrr@10"] == pytest.approx(0.5) and diff["ci"] == pytest.approx([0.5, 0.5])
