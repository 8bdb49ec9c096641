"""The read path on real engines: hybrid BM25 + kNN over the sample catalogue."""
from __future__ import annotations

from dataclasses import replace

import pytest

from query_rewriter.blend import METHODS
from query_rewriter.requests import Filters
from query_rewriter.search import SearchRequest
from tests.integration.conftest import SAMPLE, Stack

# Planted products: one that only BM25 can find for "apple watch" (the word matches, the meaning
# does not) and one that only kNN can find (the meaning matches, no word does).
PLANTED = [
    {"type": "upsert", "product_id": "planted-bm25", "version": 1,
     "title": "Apple Green Printed Cotton Kurta", "category": "Apparel > Topwear", "price": 40},
    {"type": "upsert", "product_id": "planted-knn", "version": 1,
     "title": "Smartwatch with heart-rate monitor and fitness tracker", "category": "Accessories > Watches",
     "price": 199},
]


@pytest.fixture(scope="module")
def planted(stack: Stack) -> Stack:
    stack.enqueue(PLANTED)
    stack.drained()
    return stack


def search(stack: Stack, query: str, **kw):
    return stack.system.searcher.search(SearchRequest(query=query, **kw))


def test_hybrid_holds_a_bm25_only_and_a_knn_only_product(planted: Stack):
    response = search(planted, "apple watch", depth=20, size=20)
    by_id = {h.product_id: h for h in response.hits}
    assert "planted-bm25" in by_id and set(by_id["planted-bm25"].ranks) == {"bm25"}
    assert "planted-knn" in by_id and set(by_id["planted-knn"].ranks) == {"knn"}
    both = [h for h in response.hits if set(h.ranks) == {"bm25", "knn"}]
    assert both, "some products should be found by both legs"


def test_bm25_only_and_knn_only_modes_return_one_leg(planted: Stack):
    bm25 = search(planted, "apple watch", mode="bm25", depth=20, size=20)
    knn = search(planted, "apple watch", mode="knn", depth=20, size=20)
    assert {tuple(h.ranks) for h in bm25.hits} == {("bm25",)}
    assert {tuple(h.ranks) for h in knn.hits} == {("knn",)}
    assert "planted-knn" not in {h.product_id for h in bm25.hits}
    assert "planted-bm25" not in {h.product_id for h in knn.hits}


def test_filters_apply_to_both_legs(planted: Stack):
    response = search(planted, "watch", filters=Filters(category="Accessories"), depth=50, size=50)
    assert response.hits
    assert all(h.source["category"].startswith("Accessories") for h in response.hits)
    assert any("knn" in h.ranks and "bm25" not in h.ranks for h in response.hits)  # kNN leg was filtered too

    cheap = search(planted, "watch", filters=Filters(price_max=100), depth=50, size=50)
    assert "planted-knn" not in {h.product_id for h in cheap.hits}  # 199 > 100, on both legs
    rewritten = search(planted, "smartwatch under 100", depth=50, size=50)
    assert rewritten.query == "smartwatch"
    assert "planted-knn" not in {h.product_id for h in rewritten.hits}


def test_a_query_that_names_a_brand_keeps_its_products_first_and_other_queries_as_blended(planted: Stack):
    """Through the real engine, with the dense leg alone deciding the blend (BM25 weight 0): the
    sample's Puma titles lead with "Puma", so "puma shoe" names a brand; "black shoe" names none."""
    dense_order = {"bm25": 0.0, "knn": 1.0}
    kept = search(planted, "puma shoe", weights=dense_order, depth=50, size=50)
    plain = search(planted, "puma shoe", weights=dense_order, depth=50, size=50, brand_first=False)
    puma = [h.product_id for h in plain.hits if h.source["title"].lower().startswith("puma")]
    others = [h.product_id for h in plain.hits if not h.source["title"].lower().startswith("puma")]
    assert len(puma) >= 3 and others
    assert [h.product_id for h in kept.hits] == puma + others  # each part in blend order
    assert [h.product_id for h in plain.hits] != puma + others  # the dense leg alone mixes brands here
    no_brand = search(planted, "black shoe", weights=dense_order, depth=50, size=50)
    assert no_brand.hits == search(planted, "black shoe", weights=dense_order, depth=50, size=50,
                                   brand_first=False).hits


@pytest.mark.parametrize("method", METHODS)
def test_pagination_across_the_blend_has_no_duplicates_or_gaps(planted: Stack, method: str):
    whole = search(planted, "men shoes", method=method, depth=60, size=60)
    paged = []
    for page in range(1, 7):
        paged += search(planted, "men shoes", method=method, depth=60, size=10, page=page).hits
    assert [h.product_id for h in paged] == [h.product_id for h in whole.hits]
    assert len({h.product_id for h in paged}) == len(paged)


def test_pages_past_the_window_continue_the_list_without_repeats(planted: Stack):
    whole = search(planted, "shoes", depth=20, size=60)  # tiers of 20, 40 and 80 per leg
    pages = [search(planted, "shoes", depth=20, size=10, page=page) for page in range(1, 7)]
    paged = [h.product_id for page in pages for h in page.hits]
    assert paged == [h.product_id for h in whole.hits] and len(set(paged)) == 60
    assert pages[0].facets == pages[5].facets  # counted over the first window, on every page
    with pytest.raises(ValueError, match="deepest window"):
        search(planted, "shoes", size=100, page=11)


QUOKKAS = [
    {"type": "upsert", "product_id": f"quokka-{n}", "version": 1, "title": f"Quokka Steel Kettle {n}",
     "category": "Home > Kitchen", "brand": "Quokkaware", "price": 10 + n}
    for n in range(30)
]


@pytest.fixture(scope="module")
def quokkas(planted: Stack) -> Stack:
    planted.enqueue(QUOKKAS)
    planted.drained()
    return planted


def test_a_cursor_neither_repeats_nor_skips_while_products_change(quokkas: Stack):
    planted = quokkas
    query = "quokka kettle"
    first = search(planted, query, depth=20, size=10, cursor="new")
    window = [h.product_id for h in search(planted, query, depth=20, size=20).hits]
    assert [h.product_id for h in first.hits] == window[:10] and first.next_cursor
    assert first.total >= 20 and first.total_is_lower_bound  # the union of two legs that filled their 20

    # Between the pages, page 2's quokkas stop matching the query, and one of them is deleted.
    moved = [pid for pid in window[10:20] if pid.startswith("quokka-")]
    assert len(moved) >= 3, window
    planted.enqueue([{"type": "upsert", "product_id": pid, "version": 2, "title": "Plain Steel Lid",
                      "category": "Home > Kitchen", "price": 5} for pid in moved[1:]]
                    + [{"type": "delete", "product_id": moved[0], "version": 2}])
    planted.drained()
    plain = search(planted, query, depth=20, size=10, page=2)
    assert [h.product_id for h in plain.hits] != window[10:20], "the update should reshuffle a plain page 2"

    second = search(planted, "", size=10, cursor=first.next_cursor)
    assert [h.product_id for h in second.hits] == [pid for pid in window[10:20] if pid != moved[0]]
    assert second.removed == {"gone": 1} and second.facets == first.facets
    assert {h.source["title"] for h in second.hits if h.product_id in moved} == {"Plain Steel Lid"}

    # Past the stored window: one tier deeper, appending only products not listed yet.
    seen = window.copy()
    cursor = second.next_cursor
    for _ in range(3):
        page = search(planted, "", size=10, cursor=cursor)
        ids = [h.product_id for h in page.hits]
        assert ids and not set(ids) & set(seen)
        seen += ids
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 50
    again = search(planted, "", size=10, cursor=second.next_cursor)
    assert [h.product_id for h in again.hits] == seen[20:30]  # a cursor is a position: same page twice
    with pytest.raises(ValueError, match="expired or unknown"):
        search(planted, "", cursor="not-a-token:10")


def test_a_brand_field_names_a_brand_that_no_title_holds(quokkas: Stack):
    """The quokkas' titles lead with "Quokka" and their brand field says "Quokkaware": the rule reads the
    field from the legs' sources. With the dense leg alone deciding the blend, "quokkaware shoe" puts
    shoes first; the rule moves the brand's products ahead of them.

    The window spans the whole index: here only the quokkas have a brand field, so BM25 scores "quokkaware"
    near zero (its IDF counts the documents that have the field, all of them Quokkaware), and on OpenSearch,
    whose english analyzer matches "shoe" to every "shoes", they fall out of a BM25 leg of 50."""
    dense_order = {"bm25": 0.0, "knn": 1.0}
    kept = search(quokkas, "quokkaware shoe", weights=dense_order, depth=600, size=50)
    plain = search(quokkas, "quokkaware shoe", weights=dense_order, depth=600, size=50, brand_first=False)
    assert plain.hits[0].source.get("brand") != "Quokkaware"
    named = sum(h.source.get("brand") == "Quokkaware" for h in kept.hits)
    assert named >= 3 and all(h.source.get("brand") == "Quokkaware" for h in kept.hits[:named])
    others = [h.product_id for h in kept.hits[named:]]
    assert others == [h.product_id for h in plain.hits if h.source.get("brand") != "Quokkaware"][:len(others)]


def test_facets_agree_with_the_hits(quokkas: Stack):
    response = search(quokkas, "quokka kettle", depth=30, size=30, filters=Filters(category="Home"))
    assert response.hits and response.total == len(response.hits)
    for value in response.facets["category"]:
        under = [h for h in response.hits if (h.source["category"] + " >").startswith(value.value + " >")]
        assert value.count == len(under), value
    brands = {v.value: v.count for v in response.facets["brand"]}
    assert brands.get("Quokkaware") == sum(h.source.get("brand") == "Quokkaware" for h in response.hits)
    for bucket in response.facets["price"]:
        inside = [h for h in response.hits if bucket.low <= h.source.get("price", -1) < (bucket.high or 1e12)]
        assert bucket.count == len(inside), bucket


def test_server_side_hybrid_agrees_with_client_side_blend(planted: Stack):
    if planted.kind != "opensearch":
        pytest.skip("server-side hybrid is OpenSearch neural-search only")
    assert planted.engine.supports_server_hybrid
    for query in ["apple watch", "men shoes", "blue jeans", "sports shoes for women"]:
        client = search(planted, query, method="min_max", depth=50, size=10)
        server = search(planted, query, mode="server_hybrid", method="min_max", depth=50, size=10)
        client_ids = [h.product_id for h in client.hits]
        server_ids = [h.product_id for h in server.hits]
        overlap = len(set(client_ids) & set(server_ids))
        assert overlap >= 8, (query, client_ids, server_ids)
        # Same normalisation rules: the blended scores agree, not just the order.
        server_scores = {h.product_id: h.score for h in server.hits}
        for hit in client.hits:
            if hit.product_id in server_scores:
                assert hit.score == pytest.approx(server_scores[hit.product_id], abs=0.02)


def test_hits_explain_their_leg_scores(planted: Stack):
    hit = search(planted, "apple watch", depth=20, size=20).hits[0]
    assert set(hit.leg_scores) == set(hit.normalized) == set(hit.ranks) != set()
    assert 0 < hit.score <= 1


def test_minimum_scores_cut_each_leg_and_the_fused_list_and_say_how_much(planted: Stack):
    from query_rewriter.thresholds import Thresholds

    full = search(planted, "apple watch", depth=50, size=50)
    scores = sorted(h.leg_scores["knn"] for h in full.hits if "knn" in h.leg_scores)
    median_knn = scores[len(scores) // 2]
    cut = search(planted, "apple watch", depth=50, size=50, thresholds=Thresholds(knn=median_knn, fused=0.2))
    assert cut.removed["knn"] > 0 and cut.removed["bm25"] == 0
    assert all(h.leg_scores["knn"] >= median_knn for h in cut.hits if "knn" in h.leg_scores)
    assert all(h.score >= 0.2 for h in cut.hits)
    assert cut.total < full.total and full.removed == {"bm25": 0, "knn": 0, "fused": 0}


def test_int8_vectors_are_recorded_and_rescored_to_the_float_indexs_answers(stack: Stack):
    """``INDEX_VECTORS=int8``: a new index holds Lucene int8 vectors and says so in its ``_meta``, and
    the searcher rescores them by the float vectors, answering as the float index of the same
    products does."""
    from indexer.catalog import catalog_events
    from indexer.pipeline import index_events
    from query_rewriter.knn_breadth import RESCORE_OVERSAMPLE
    from system import System

    quantized = System(replace(stack.system.settings, index_prefix="itest-int8", index_vectors="int8"))
    try:
        index = quantized.ensure_index()
        events = catalog_events(SAMPLE)
        report = index_events(events, engine=quantized.engine, encoder=quantized.encoder,
                              index=quantized.names.write_alias, image_root=SAMPLE)
        assert report.counts()["indexed"] == len(events)
        quantized.engine.refresh(index)
        assert quantized.engine.mapping_meta(index)["vectors"] == "int8"
        assert quantized.searcher.oversample(index) == RESCORE_OVERSAMPLE
        assert stack.system.searcher.oversample(stack.system.models.for_reads().index) is None
        shared = 0
        for query in ("men black trunks", "women blue jeans", "red running shoes", "leather wallet"):
            floats, int8s = ([h.product_id for h in system.searcher.search(
                SearchRequest(query=query, mode="knn", size=10)).hits] for system in (stack.system, quantized))
            assert len(int8s) == 10
            shared += len(set(floats) & set(int8s))
        assert shared >= 36  # of 40: the same neighbours, up to ties between identical titles
    finally:
        quantized.close()
