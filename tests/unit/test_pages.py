"""Pages past the first window (blend tiers), facet counts and cursor states: pure logic."""
from __future__ import annotations

import pytest

from query_rewriter.blend import Blended, blend, blend_tiers, tier_depths
from query_rewriter.cursor import CursorState, format_cursor, parse_cursor
from query_rewriter.facets import FacetValue, category_paths, facet_counts, price_range

LEGS = {
    "bm25": [("a", 9.0), ("b", 7.0), ("c", 5.0), ("d", 3.0), ("e", 1.0)],
    "knn": [("c", 0.9), ("f", 0.8), ("a", 0.7), ("g", 0.6), ("b", 0.5)],
}
WEIGHTS = {"bm25": 0.5, "knn": 0.5}


def ids(items: list[Blended]) -> list[str]:
    return [item.doc_id for item in items]


def test_the_first_tier_is_the_plain_blend_of_the_first_window():
    window = {name: leg[:2] for name, leg in LEGS.items()}
    tiers = blend_tiers(LEGS, WEIGHTS, "min_max", [2, 4, 5])
    assert ids(tiers[0]) == ids(blend(window, WEIGHTS, "min_max"))
    assert set(ids(tiers[0])) == {"a", "b", "c", "f"}


def test_deeper_tiers_append_only_what_earlier_tiers_lack():
    tiers = blend_tiers(LEGS, WEIGHTS, "min_max", [2, 4, 5])
    flat = [doc for tier in tiers for doc in ids(tier)]
    assert len(flat) == len(set(flat)) == 7  # every product once: a..g
    assert set(ids(tiers[1])) == {"d", "g"}  # top-4 adds d (bm25) and g (knn); a, b, c, f are held
    assert ids(tiers[2]) == ["e"]
    deeper = {name: leg[:4] for name, leg in LEGS.items()}
    assert ids(tiers[1]) == [doc for doc in ids(blend(deeper, WEIGHTS, "min_max")) if doc in {"d", "g"}]


def test_a_page_cut_from_tiers_is_stable_as_the_window_deepens():
    shallow = [doc for tier in blend_tiers(LEGS, WEIGHTS, "rrf", [2, 4]) for doc in ids(tier)]
    deep = [doc for tier in blend_tiers(LEGS, WEIGHTS, "rrf", [2, 4, 5]) for doc in ids(tier)]
    assert deep[: len(shallow)] == shallow


@pytest.mark.parametrize("depths", [[], [3, 2], [2, 2], [0, 4]])
def test_tier_depths_must_increase(depths):
    with pytest.raises(ValueError, match="increasing"):
        blend_tiers(LEGS, WEIGHTS, "min_max", depths)


def test_tier_depths_double_until_the_page_fits_and_stop_at_the_limit():
    assert tier_depths(100, 10, 1000) == [100]
    assert tier_depths(100, 100, 1000) == [100]
    assert tier_depths(100, 101, 1000) == [100, 200]
    assert tier_depths(100, 350, 1000) == [100, 200, 400]
    assert tier_depths(100, 5000, 1000) == [100, 200, 400, 800, 1000]


def test_category_paths_count_every_ancestor():
    assert category_paths("Apparel > Topwear > Shirts") == (
        "Apparel", "Apparel > Topwear", "Apparel > Topwear > Shirts")
    assert category_paths("  ") == ()


@pytest.mark.parametrize("price, bucket", [(0, (0, 1)), (7.5, (5, 10)), (10, (10, 20)), (1999, (1000, 2000)),
                                            (10**9, (5 * 10**7, None))])
def test_price_ranges_follow_a_1_2_5_series(price, bucket):
    assert price_range(price) == bucket


def test_facet_counts_agree_with_the_sources():
    sources = [
        {"category": "Apparel > Topwear", "brand": "Nike", "price": 30},
        {"category": "Apparel > Bottomwear", "brand": "Nike", "price": 45},
        {"category": "Footwear > Shoes", "brand": "Puma", "price": 120},
        {"category": "Apparel > Topwear"},  # no brand, no price: counted under its category only
    ]
    facets = facet_counts(sources)
    category = {v.value: v.count for v in facets["category"]}
    assert category == {"Apparel": 3, "Apparel > Topwear": 2, "Apparel > Bottomwear": 1, "Footwear": 1,
                        "Footwear > Shoes": 1}
    assert [(v.value, v.count) for v in facets["brand"]] == [("Nike", 2), ("Puma", 1)]
    assert facets["price"] == [FacetValue("20-50", 2, 20, 50), FacetValue("100-200", 1, 100, 200)]
    assert sum(v.count for v in facets["price"]) == 3


def test_a_cursor_state_survives_its_json():
    state = CursorState({"query": "red handbag"}, "products-v1", 200, 100, True,
                        [Blended("a", 0.9, {"bm25": 3.0}, {"bm25": 1.0}, {"bm25": 1})],
                        {"brand": [FacetValue("Nike", 2)], "price": [FacetValue("20-50", 1, 20, 50)]})
    assert CursorState.from_json(state.to_json()) == state


def test_cursor_strings_round_trip_and_malformed_ones_say_what_to_do():
    assert parse_cursor(format_cursor("tok_en-1", 30)) == ("tok_en-1", 30)
    for bad in ["", "token", "token:", ":10", "token:-1", "token:1x", "t" * 101 + ":1"]:
        with pytest.raises(ValueError, match="next_cursor"):
            parse_cursor(bad)
