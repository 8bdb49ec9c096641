"""The brand rule (``query_rewriter.brand``): which query words name a brand, and what moves."""
from __future__ import annotations

from query_rewriter.blend import Blended
from query_rewriter.brand import BRAND_MIN_TITLES, BRAND_SHARE, brand_first, brand_words, first_word


def leg(titles: dict[str, str]) -> list[tuple[str, float]]:
    return [(pid, float(len(titles) - rank)) for rank, pid in enumerate(titles)]


TITLES = {
    "p1": "Puma Men Black Running Shoes", "p2": "Puma Women Grey T-shirt", "p3": "Puma Unisex Navy Backpack",
    "n1": "Nike Men Navy Blue Shoes", "w1": "Wildcraft Unisex Navy Backpack",
}


def test_a_word_the_titles_lead_with_is_a_brand_and_a_word_inside_them_is_not():
    assert brand_words("puma navy backpack", leg(TITLES), TITLES) == {"puma"}  # navy: 0 of 3 titles begin with it
    assert brand_words("Puma's backpack", leg(TITLES), TITLES) == {"puma"}  # words as the known-item rule reads them
    assert brand_words("navy shoes", leg(TITLES), TITLES) == frozenset()
    assert first_word("  Puma-Men shoes") == "puma" and first_word(None) is None and first_word("--") is None


def test_a_brand_needs_enough_titles_and_a_large_enough_share_of_them():
    assert (BRAND_MIN_TITLES, BRAND_SHARE) == (3, 0.8)
    two = {"a": "Lee Blue Jeans", "b": "Lee Black Jeans"}
    assert brand_words("lee jeans", leg(two), two) == frozenset()  # 2 titles < 3
    four_of_five = {**{f"l{i}": f"Lee Jeans {i}" for i in range(4)}, "x": "Levis Lee Cooper Jeans"}
    assert brand_words("lee jeans", leg(four_of_five), four_of_five) == {"lee"}  # 4 / 5 = 0.8
    three_of_five = {**{f"l{i}": f"Lee Jeans {i}" for i in range(3)},
                     "x": "Levis Lee Jeans", "y": "Wrangler Lee Jeans"}
    assert brand_words("lee jeans", leg(three_of_five), three_of_five) == frozenset()  # 3 / 5 < 0.8
    untitled = {"p1": None, "p2": None, "p3": None}
    assert brand_words("puma", [("p1", 3.0), ("p2", 2.0), ("p3", 1.0)], untitled) == frozenset()


def test_the_brands_products_move_first_and_each_part_keeps_its_blend_order():
    fused = [Blended(pid, score) for pid, score in (("n1", 0.9), ("p2", 0.8), ("w1", 0.7), ("p1", 0.6), ("x", 0.5))]
    titles = {**TITLES, "x": None}
    assert [b.doc_id for b in brand_first(fused, frozenset({"puma"}), titles)] == ["p2", "p1", "n1", "w1", "x"]
    assert brand_first(fused, frozenset(), titles) == fused
    assert [b.doc_id for b in brand_first(fused, frozenset({"puma", "nike"}), titles)] == ["n1", "p2", "p1", "w1", "x"]
