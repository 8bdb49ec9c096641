"""The brand rule (``query_rewriter.brand``): which query words name a brand, and what moves."""
from __future__ import annotations

from query_rewriter.blend import Blended
from query_rewriter.brand import BRAND_MIN_TITLES, BRAND_SHARE, brand_first, brand_words, first_word, sold_under


def leg(titles: dict[str, str]) -> list[tuple[str, float]]:
    return [(pid, float(len(titles) - rank)) for rank, pid in enumerate(titles)]


TITLES = {
    "p1": "Puma Men Black Running Shoes", "p2": "Puma Women Grey T-shirt", "p3": "Puma Unisex Navy Backpack",
    "n1": "Nike Men Navy Blue Shoes", "w1": "Wildcraft Unisex Navy Backpack",
}


NO_BRANDS: dict[str, str | None] = {}


def test_a_word_the_titles_lead_with_is_a_brand_and_a_word_inside_them_is_not():
    # navy: 0 of 3 titles begin with it
    assert brand_words("puma navy backpack", leg(TITLES), TITLES, NO_BRANDS) == {"puma"}
    # words as the known-item rule reads them
    assert brand_words("Puma's backpack", leg(TITLES), TITLES, NO_BRANDS) == {"puma"}
    assert brand_words("navy shoes", leg(TITLES), TITLES, NO_BRANDS) == frozenset()
    assert first_word("  Puma-Men shoes") == "puma" and first_word(None) is None and first_word("--") is None


def test_a_brand_needs_enough_titles_and_a_large_enough_share_of_them():
    assert (BRAND_MIN_TITLES, BRAND_SHARE) == (3, 0.8)
    two = {"a": "Lee Blue Jeans", "b": "Lee Black Jeans"}
    assert brand_words("lee jeans", leg(two), two, NO_BRANDS) == frozenset()  # 2 titles < 3
    four_of_five = {**{f"l{i}": f"Lee Jeans {i}" for i in range(4)}, "x": "Levis Lee Cooper Jeans"}
    assert brand_words("lee jeans", leg(four_of_five), four_of_five, NO_BRANDS) == {"lee"}  # 4 / 5 = 0.8
    three_of_five = {**{f"l{i}": f"Lee Jeans {i}" for i in range(3)},
                     "x": "Levis Lee Jeans", "y": "Wrangler Lee Jeans"}
    assert brand_words("lee jeans", leg(three_of_five), three_of_five, NO_BRANDS) == frozenset()  # 3 / 5 < 0.8
    untitled = {"p1": None, "p2": None, "p3": None}
    assert brand_words("puma", [("p1", 3.0), ("p2", 2.0), ("p3", 1.0)], untitled, NO_BRANDS) == frozenset()


def test_the_brands_products_move_first_and_each_part_keeps_its_blend_order():
    fused = [Blended(pid, score) for pid, score in (("n1", 0.9), ("p2", 0.8), ("w1", 0.7), ("p1", 0.6), ("x", 0.5))]
    titles = {**TITLES, "x": None}
    puma_first = brand_first(fused, frozenset({"puma"}), titles, NO_BRANDS)
    assert [b.doc_id for b in puma_first] == ["p2", "p1", "n1", "w1", "x"]
    assert brand_first(fused, frozenset(), titles, NO_BRANDS) == fused
    both = brand_first(fused, frozenset({"puma", "nike"}), titles, NO_BRANDS)
    assert [b.doc_id for b in both] == ["n1", "p2", "p1", "w1", "x"]  # one word each: blend order


def test_a_product_is_sold_under_its_brand_fields_words_else_its_titles_first_word():
    assert sold_under("Men Brown Derby Shoes", "Red Tape") == {"red", "tape"}
    assert sold_under("Puma Men Shoes", None) == {"puma"} and sold_under("Puma Men Shoes", " -- ") == {"puma"}
    assert sold_under(None, None) == frozenset() and sold_under(None, "Lee") == {"lee"}


def test_a_brand_field_names_brands_whose_titles_do_not_lead_with_them():
    titles = {**{f"t{i}": f"Men Brown Derby Shoes {i}" for i in range(3)},
              **{f"r{i}": f"Red Cotton Shirt {i}" for i in range(4)}}
    brands = {**{f"t{i}": "Red Tape" for i in range(3)}, **{f"r{i}": "Roadster" for i in range(4)}}
    # "tape": 3 of 3 holding products are sold under it; "red": 3 of 7 (the Roadster shirts' titles hold it)
    assert brand_words("red tape shoes", leg(titles), titles, brands) == {"tape"}
    # By first words alone the shirts' "Red" reads as a brand, and Red Tape's "Men" does not.
    assert brand_words("red tape shoes", leg(titles), titles, NO_BRANDS) == {"red"}
    assert brand_words("roadster shirt", leg(titles), titles, brands) == {"roadster"}  # no title holds it
    fused = [Blended(pid, 1.0 - n / 10) for n, pid in enumerate(["r0", "t0", "r1", "t1", "t2"])]
    assert [b.doc_id for b in brand_first(fused, frozenset({"tape"}), titles, brands)] == ["t0", "t1", "t2", "r0", "r1"]


def test_products_sold_under_more_of_the_querys_brand_words_come_first():
    titles = {"b": "Men Polo", "h": "Women Kurta", "n": "Women Kurta 2"}
    brands = {"b": "United Colors of Benetton", "h": "House of Pataudi", "n": None}
    fused = [Blended(pid, score) for pid, score in (("n", 0.9), ("b", 0.8), ("h", 0.7))]
    ranked = brand_first(fused, frozenset({"house", "of", "pataudi"}), titles, brands)
    assert [b.doc_id for b in ranked] == ["h", "b", "n"]  # 3 of the words, then 1 ("of"), then none
