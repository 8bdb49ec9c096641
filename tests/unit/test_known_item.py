"""The known-item rule: BM25's top product moves first only when it holds every query word and
BM25 singles it out: no other product of the leg holds every word, or the score margin is clear."""
from typing import Any, Mapping, Sequence

from query_rewriter.blend import Blended
from query_rewriter.known_item import KNOWN_ITEM_MARGIN, known_item, promote, words
from query_rewriter.search import HybridSearcher, SearchRequest
from tests.unit.test_bench_relevance import CountingEncoder, FakeEngine

LEG = [("p1", 12.0), ("p2", 6.0), ("p3", 5.0)]  # top-1 is 2x top-2: singled out by the margin
GEL = "ASICS Men Gel-Pulse 3 Shoes"


def titles(top: str | None, second: str | None = "ASICS Gel Kayano", third: str | None = "Nike Gel Pulse") -> dict:
    return {"p1": top, "p2": second, "p3": third}


def test_words_are_lower_case_alphanumeric_runs():
    assert words("Gel-Pulse III, 244") == {"gel", "pulse", "iii", "244"}


def test_a_title_with_every_query_word_and_a_clear_margin_is_the_known_item():
    assert known_item("asics gel pulse", LEG, titles(GEL, second="ASICS Gel Pulse")) == "p1"


def test_a_missing_query_word_is_not():
    assert known_item("asics gel pulse red", LEG, titles(GEL)) is None


def test_within_the_margin_only_the_sole_title_with_every_word_is():
    close = [("p1", 10.0), ("p2", 10.0 / KNOWN_ITEM_MARGIN + 0.01), ("p3", 1.0)]
    # p2 holds every word too, and p1 is within the margin: not singled out
    assert known_item("asics gel pulse", close, titles("ASICS Gel Pulse", second="Asics Gel Pulse Red")) is None
    # p2 and p3 lack "asics" / "pulse": p1 is the only title with every word, whatever the margin
    assert known_item("asics gel pulse", close, titles("ASICS Gel Pulse")) == "p1"
    exact_margin = [("p1", 10.0), ("p2", 10.0 / KNOWN_ITEM_MARGIN)]
    assert known_item("asics gel pulse", exact_margin, titles("ASICS Gel Pulse", second="ASICS Gel Pulse 2")) == "p1"


def test_of_products_tied_at_the_top_the_one_with_every_word_is_the_top_whatever_their_order():
    """The engine orders a tie by its own document order: the rule must not depend on it."""
    tied = [("p1", 6.9), ("p2", 6.9), ("p3", 6.9)]
    query, holder = "flying this that", "Flying Machine Women This & That Grey Tshirt"
    others = {"second": "Flying Machine Men Brown Belt", "third": "Nike Men Fly Black Shorts"}
    assert known_item(query, tied, titles(holder, **others)) == "p1"
    assert known_item(query, tied, titles(others["second"], second=holder, third=others["third"])) == "p2"
    # two tied titles with every word: BM25 does not single either out
    assert known_item(query, tied, titles(holder, second=holder + " 2", third=others["third"])) is None
    # and a lower-scored title with every word still counts against the top one
    assert known_item(query, [*tied[:2], ("p3", 1.0)], titles(others["second"], second=holder, third=holder)) is None


def test_empty_inputs_give_nothing_and_a_lone_hit_counts_as_singled_out():
    assert known_item("asics", [], titles("ASICS")) is None
    assert known_item("", LEG, titles("ASICS")) is None
    assert known_item("asics", LEG, titles(None)) is None
    assert known_item("asics", [("p9", 1.0)], {"p9": "Asics Bag"}) == "p9"


def test_promote_moves_only_the_known_item():
    fused = [Blended("a", 0.9), Blended("b", 0.8), Blended("c", 0.7)]
    assert [b.doc_id for b in promote(fused, "c")] == ["c", "a", "b"]
    assert [b.doc_id for b in promote(fused, None)] == ["a", "b", "c"]
    assert [b.doc_id for b in promote(fused, "zz")] == ["a", "b", "c"]


class TitledEngine(FakeEngine):
    """BM25 singles out "b" (Puma 244) by 8 to 3; the dense leg prefers "a", so the blend puts "a" first."""

    LEGS = {"bm25": [("b", 8.0), ("c", 3.0), ("a", 1.0)], "knn": [("a", 0.9), ("d", 0.5), ("c", 0.45)]}
    TITLES = {"a": "Puma Men Black Sneakers", "b": "Puma 244 Running Shoes", "c": "Puma Socks", "d": "Nike Cap"}

    def msearch(self, index: str, bodies: Sequence[Mapping[str, Any]], dfs: bool = False) -> list[dict[str, Any]]:
        responses = super().msearch(index, bodies, dfs)
        for response in responses:
            for hit in response["hits"]["hits"]:
                hit["_source"] = {"title": self.TITLES[hit["_id"]]}
        return responses


def test_the_searcher_keeps_the_known_item_first_in_a_hybrid():
    searcher = HybridSearcher.over(TitledEngine("http://fake"), CountingEncoder(), "idx")
    with_rule = searcher.search(SearchRequest("Puma 244", mode="hybrid"))
    without = searcher.search(SearchRequest("Puma 244", mode="hybrid", known_item=False))
    assert [h.product_id for h in without.hits] == ["a", "b", "c", "d"]  # 0.5005 > 0.5 > 0.143 > 0.056
    assert [h.product_id for h in with_rule.hits] == ["b", "a", "c", "d"]
    described = searcher.search(SearchRequest("puma black sneakers", mode="hybrid"))
    assert described.hits[0].product_id == "a"  # "b" lacks the query's words: the blend decides


def test_a_known_items_query_may_name_its_brand_as_the_brand_field_spells_it():
    from query_rewriter.search import word_rules

    fused = [Blended("p2", 0.9), Blended("p3", 0.8), Blended("p1", 0.7)]
    kettles = {"p1": "Quokka Steel Kettle 3", "p2": "Quokka Steel Kettle 13", "p3": "Steel Kettle 3"}
    brands = {"p1": "Quokkaware", "p2": "Quokkaware", "p3": None}
    ranked = word_rules(fused, "quokkaware kettle 3", LEG, kettles, brands, with_brand_first=False)
    assert [b.doc_id for b in ranked] == ["p1", "p2", "p3"]
    assert word_rules(fused, "quokkaware kettle 3", LEG, kettles, {}, with_brand_first=False) == fused
