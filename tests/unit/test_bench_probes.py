"""The identifier and brand probes' generators and metrics (pure functions)."""
from __future__ import annotations

import pytest

from bench.probes import (
    BRAND_MIN_PRODUCTS, BRAND_MIN_TITLES, BRAND_MODES, NO_BRAND_RULE, NO_RULE, RARE_DF, BrandQuery, brand_markdown,
    brand_queries, brand_scores, exact_search, Found, hybrid_miss, identifier_queries, KnownItem, known_item_scores,
    markdown, modes, ndcg_difference, paired_differences, probe, summarise,
)

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


def _hit(product_id: str, score: float) -> Found:
    return Found(product_id, TITLES[product_id], score)  # the raw score is the BM25 leg's


def test_a_hybrid_miss_records_what_the_known_item_rule_saw_and_the_report_lists_it():
    item = KnownItem("id-1", "Asics Gel", "1")
    miss = hybrid_miss(item, [_hit("1", 9.0), _hit("2", 8.0), _hit("3", 1.0)], ["2", "1", "3", "4"])
    assert miss == {"query": "Asics Gel", "product_id": "1", "hybrid": ["2", "1", "3"],
                    "bm25": [{"product_id": "1", "title": TITLES["1"], "score": 9.0},
                             {"product_id": "2", "title": TITLES["2"], "score": 8.0}]}
    lone = hybrid_miss(item, [_hit("1", 9.0)], ["2", "1"])
    payload = {"command": "c", "commit": "x", "date": "d", "engine": "opensearch", "model_version": "m",
               "machine": {"nproc": 2, "cpu": "cpu", "memory_gib": 1.0}, "queries": 1, "products": 6,
               "catalog": "cat", "seed": 0, "examples": [], "misses": [miss, lone], "blend": 0.1, "bm25_weights": [0.3],
               "scores": {mode: {"success@1": 0.0, "mrr@10": 0.0} for mode in modes([0.3])},
               "differences": [{"a": "a", "b": "b", "mrr@10": 0.0, "ci": [0.0, 0.0]}] * 4}
    text = markdown(payload)
    assert "the hybrid does not (2)" in text
    assert f"| Asics Gel | 1 | 1 {TITLES['1']} (9.00) | 2 {TITLES['2']} (8.00) | 2, 1, 3 |" in text
    assert f"| Asics Gel | 1 | 1 {TITLES['1']} (9.00) | - | 2, 1 |" in text
    assert f"| {NO_RULE}, BM25 0.3 | 0.000 | 0.000 |" in text and "At BM25 0.3 (kNN the rest" in text
    assert "the hybrid as served (min-max, BM25 0.1 / kNN 0.9" in text


def test_extra_weights_add_a_hybrid_with_and_without_the_rule_at_each():
    rows = modes([0.1, 0.3])
    assert list(rows)[:4] == ["bm25", "knn", "hybrid", NO_RULE]  # the default rows keep their names
    assert rows["hybrid, BM25 0.1"] == {"mode": "hybrid", "weights": {"bm25": 0.1, "knn": 0.9}}
    assert rows[f"{NO_RULE}, BM25 0.3"] == {"mode": "hybrid", "known_item": False, "weights": {"bm25": 0.3, "knn": 0.7}}
    assert modes() == modes([]) and len(modes()) == 4


BRAND_TITLES = {
    "1": "Puma Men Black Running Shoes", "2": "Puma Women White Shoes", "3": "Puma Men Blue Sports Shoes",
    "4": "Puma Men Grey Tshirt", "5": "Puma Women Pink Tshirt",
    "6": "Nike Men Blue Shoes", "7": "Nike Men Black Shoes", "8": "Nike Men Red Shoes", "9": "Nike Women Shoe",
    "9b": "Nike Unisex Cap",
    "10": "Lee Men Blue Jeans", "11": "Lee Men Black Jeans", "12": "Lee Women Jeans",  # Lee: 3 titles < 5
    "13": "Asics Shoes", "14": "3M Men Black Shoes",  # too short; a brand with a digit
}


def test_a_brand_query_is_a_first_and_last_title_word_with_every_product_that_has_both():
    assert (BRAND_MIN_PRODUCTS, BRAND_MIN_TITLES) == (3, 5)
    items = {item.query: item.relevant for item in brand_queries(BRAND_TITLES)}
    # puma shoes: 3 titles; puma tshirt: 2 < 3; nike shoes: 3 ("shoe" is another word; Nike has 5 titles);
    # lee jeans: 3, but Lee has 3 titles in all < 5
    assert items == {"puma shoes": {"1", "2", "3"}, "nike shoes": {"6", "7", "8"}}
    assert [item.query_id for item in brand_queries(BRAND_TITLES, limit=1, seed=3)] == \
        [item.query_id for item in brand_queries(BRAND_TITLES, seed=3)][:1]


def test_brand_scores_are_binary_ndcg_at_ten_and_pair_by_query():
    items = [BrandQuery("q1", "puma shoes", frozenset({"a", "b"})), BrandQuery("q2", "nike shoes", frozenset({"c"}))]
    rankings = {"bm25": {"q1": ["a", "b"], "q2": ["x", "c"]}, "knn": {"q1": ["x", "a"], "q2": []}}
    scores = brand_scores(items, rankings)
    ideal = 1 + 1 / 1.5849625007211563  # two relevant at ranks 1 and 2
    assert scores["bm25"] == pytest.approx([1.0, 1 / 1.5849625007211563])
    assert scores["knn"] == pytest.approx([(1 / 1.5849625007211563) / ideal, 0.0])
    difference = ndcg_difference(scores, "bm25", "knn")
    assert difference["ndcg@10"] == pytest.approx(((1 - scores["knn"][0]) + 1 / 1.5849625007211563) / 2)


def test_the_brand_section_names_its_rows_and_what_the_rule_adds():
    assert list(BRAND_MODES) == ["bm25", "knn", "hybrid", NO_BRAND_RULE]
    assert BRAND_MODES[NO_BRAND_RULE] == {"mode": "hybrid", "brand_first": False}
    brands = {"queries": 2, "min_products": 3, "min_titles": 5,
              "scores": {"bm25": 0.98, "knn": 0.28, "hybrid": 0.87, NO_BRAND_RULE: 0.40},
              "differences": [{"a": "hybrid", "b": NO_BRAND_RULE, "ndcg@10": 0.47, "ci": [0.43, 0.51]}] * 4,
              "examples": [{"query": "puma shoes", "relevant": 3, "bm25": ["1"], "knn": ["6"], "hybrid": ["1"],
                            NO_BRAND_RULE: ["6"]}]}
    text = "\n".join(brand_markdown(brands, "cat", 0, 0.1))
    assert "| hybrid without the brand rule | 0.400 |" in text
    assert "the brand rule (`query_rewriter.brand`) adds +0.470" in text
    assert "| puma shoes | 3 | 1 | 6 | 1 | 6 |" in text


def test_probe_scores_every_row_and_keeps_what_the_hybrid_missed():
    items = [KnownItem("id-1", "Asics Gel Pulse III", "1"), KnownItem("id-2", "Asics Gel Kayano", "2")]
    brands = [BrandQuery("brand-nike-shoes", "nike shoes", frozenset({"3", "4"}))]
    asked = []

    def search(text, fields):  # BM25 finds each known item first; every other row puts product 5 first
        asked.append((text, dict(fields)))
        target = next((item.product_id for item in items if item.query == text), "3")
        order = [target, "5"] if fields["mode"] == "bm25" else ["5", target]
        return [Found(pid, TITLES[pid], 2.0 if fields["mode"] == "bm25" else None) for pid in order]

    found = probe(search, items, brands, modes())
    assert found["per_query"]["bm25"] == [(1.0, 1.0), (1.0, 1.0)]
    assert found["per_query"]["hybrid"] == found["per_query"]["knn"] == [(0.0, 0.5), (0.0, 0.5)]
    assert [miss["product_id"] for miss in found["misses"]] == ["1", "2"]
    assert found["misses"][0]["bm25"][0] == {"product_id": "1", "title": TITLES["1"], "score": 2.0}
    assert found["brand_rankings"][NO_BRAND_RULE] == {"brand-nike-shoes": ["5", "3"]}
    assert len(asked) == 2 * len(modes()) + len(BRAND_MODES)  # each query once per row


class _WordEncoder:
    """Bag-of-words vectors over ``VOCABULARY``, which has no brand in it: a dense leg as brand-blind as the trained
    default's (``docs/probes.md``); cosine counts shared words, the photo is ignored."""

    VOCABULARY = ["men", "women", "kids", "black", "shoes"]
    dimension = len(VOCABULARY)
    model_version = "words"

    def _vectors(self, texts):
        import numpy as np

        rows = np.array([[float(word in text.lower().split()) for word in self.VOCABULARY] for text in texts])
        return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)).astype("float32")

    def encode_queries(self, texts, batch_size=64):
        return self._vectors(texts)

    def encode_products(self, products, batch_size=64):
        return self._vectors([product.title for product in products])


SHOES = {"1": "Puma Shoes", "2": "Puma Men Shoes", "3": "Nike Men Black Shoes", "4": "Nike Women Black Shoes",
         "5": "Nike Kids Black Shoes", "6": "Adidas Shoes",
         **{str(n): f"Titan Men Watch {n}" for n in range(7, 17)}}  # so that Okapi's IDF is positive for both words


def test_exact_search_ranks_each_row_in_process_with_the_word_rules(tmp_path):
    rows = "\n".join(f"{pid},{title},{'Accessories > Watches' if 'Watch' in title else 'Footwear > Shoes'},"
                     for pid, title in SHOES.items())
    (tmp_path / "products.csv").write_text(f"product_id,title,category,image\n{rows}\n")
    search = exact_search(_WordEncoder(), tmp_path, ["nike shoes"], 0.1)
    bm25 = search("nike shoes", {"mode": "bm25"})
    assert {found.product_id for found in bm25[:3]} == {"3", "4", "5"}  # both query words
    assert len(bm25) == 6 and all(found.title == SHOES[found.product_id] and found.bm25 > 0 for found in bm25)
    # the dense leg sees only "shoes": "Puma Shoes" and "Adidas Shoes" are nearest, the Nike titles (two more
    # words each) furthest; at BM25 0.1 the blend follows it, and the brand rule puts Nike's three first
    assert [found.product_id for found in search("nike shoes", {"mode": "knn"})][:2] in (["1", "6"], ["6", "1"])
    without = search("nike shoes", BRAND_MODES[NO_BRAND_RULE])
    assert {found.product_id for found in without[:2]} == {"1", "6"}
    served = search("nike shoes", BRAND_MODES["hybrid"])
    assert {found.product_id for found in served[:3]} == {"3", "4", "5"}
    assert [f.product_id for f in served[3:]] == [f.product_id for f in without if f.product_id not in "345"]
    with pytest.raises(KeyError):
        search("a query it was not built for", {"mode": "bm25"})
