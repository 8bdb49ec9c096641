"""The read path on real engines: hybrid BM25 + kNN over the sample catalogue."""
from __future__ import annotations

import pytest

from query_rewriter.blend import METHODS
from query_rewriter.requests import Filters
from query_rewriter.search import SearchRequest
from tests.integration.conftest import Stack

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


@pytest.mark.parametrize("method", METHODS)
def test_pagination_across_the_blend_has_no_duplicates_or_gaps(planted: Stack, method: str):
    whole = search(planted, "men shoes", method=method, depth=60, size=60)
    paged = []
    for page in range(1, 7):
        paged += search(planted, "men shoes", method=method, depth=60, size=10, page=page).hits
    assert [h.product_id for h in paged] == [h.product_id for h in whole.hits]
    assert len({h.product_id for h in paged}) == len(paged)


def test_a_page_past_the_window_is_refused(planted: Stack):
    with pytest.raises(ValueError, match="candidate window"):
        search(planted, "shoes", depth=20, size=10, page=3)


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
    assert cut.candidates < full.candidates and full.removed == {"bm25": 0, "knn": 0, "fused": 0}
