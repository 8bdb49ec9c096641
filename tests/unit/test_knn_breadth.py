"""The kNN leg's search breadth: a fixed setting, or the small breadth below the size threshold
and the wide one above it, with each index counted at most once per TTL; and how each engine's
request carries the breadth and float rescoring."""
from typing import Any, Mapping, Sequence

import pytest

from engines.elasticsearch import ElasticsearchEngine
from engines.opensearch import OpenSearchEngine
from query_rewriter.knn_breadth import (
    COUNT_TTL_S,
    LARGE_INDEX_CANDIDATES,
    LARGE_INDEX_DOCUMENTS,
    SMALL_INDEX_CANDIDATES,
    KnnBreadth,
    candidates_for,
)
from query_rewriter.search import HybridSearcher, SearchRequest
from tests.unit.test_bench_relevance import CountingEncoder, FakeEngine


class SizedEngine(FakeEngine):
    """Answers ``_count`` from a table and records the kNN breadth of every search body."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__("http://fake")
        self.sizes = sizes
        self.counted: list[str] = []
        self.breadths: list[int | None] = []

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        self.counted.append(index)
        return self.sizes[index]

    def knn_query(self, field: str, vector: Sequence[float], k: int, filters: Any,
                  candidates: int | None = None) -> dict[str, Any]:
        self.breadths.append(candidates)
        return super().knn_query(field, vector, k, filters, candidates)


def test_the_small_breadth_up_to_the_threshold_and_the_wide_breadth_above_it():
    assert candidates_for(0) == SMALL_INDEX_CANDIDATES
    assert candidates_for(LARGE_INDEX_DOCUMENTS) == SMALL_INDEX_CANDIDATES
    assert candidates_for(LARGE_INDEX_DOCUMENTS + 1) == LARGE_INDEX_CANDIDATES
    assert 100 < SMALL_INDEX_CANDIDATES < LARGE_INDEX_CANDIDATES  # wider than both engines' defaults


def test_each_index_is_counted_once_per_ttl():
    now = [0.0]
    engine = SizedEngine({"small": 10, "large": LARGE_INDEX_DOCUMENTS + 1})
    breadth = KnnBreadth(engine, clock=lambda: now[0])
    assert [breadth("small"), breadth("large"), breadth("small")] == [
        SMALL_INDEX_CANDIDATES, LARGE_INDEX_CANDIDATES, SMALL_INDEX_CANDIDATES]
    assert engine.counted == ["small", "large"]
    engine.sizes["small"] = LARGE_INDEX_DOCUMENTS * 2  # grows past the threshold
    now[0] = COUNT_TTL_S - 1
    assert breadth("small") == SMALL_INDEX_CANDIDATES  # still the old count
    now[0] = COUNT_TTL_S
    assert breadth("small") == LARGE_INDEX_CANDIDATES
    assert engine.counted == ["small", "large", "small"]


def test_a_fixed_breadth_needs_no_count_and_must_be_positive():
    engine = SizedEngine({})
    assert KnnBreadth(engine, fixed=250)("anything") == 250
    assert engine.counted == []
    with pytest.raises(ValueError, match="KNN_CANDIDATES"):
        KnnBreadth(engine, fixed=0)


def test_the_searcher_asks_the_breadth_of_the_index_it_searches():
    engine = SizedEngine({"idx": LARGE_INDEX_DOCUMENTS + 1})
    searcher = HybridSearcher(engine, lambda: ("idx", CountingEncoder()), breadth=KnnBreadth(engine))
    searcher.search(SearchRequest("shoes", mode="hybrid"))
    searcher.search(SearchRequest("shoes", mode="bm25"))
    assert engine.breadths == [LARGE_INDEX_CANDIDATES]  # the kNN leg only
    HybridSearcher.over(engine, CountingEncoder(), "idx").search(SearchRequest("shoes", mode="knn"))
    assert engine.breadths[-1] is None


def test_opensearch_passes_the_breadth_as_ef_search():
    engine = OpenSearchEngine("http://127.0.0.1:1")
    plain = engine.knn_query("vector", [1.0, 0.0], 100, [])["query"]["knn"]["vector"]
    assert "method_parameters" not in plain  # the index setting (default 100) applies
    wide = engine.knn_query("vector", [1.0, 0.0], 100, [], candidates=400)["query"]["knn"]["vector"]
    assert wide["method_parameters"] == {"ef_search": 400} and wide["k"] == 100


def test_elasticsearch_passes_the_breadth_as_num_candidates_never_below_k():
    engine = ElasticsearchEngine("http://127.0.0.1:1")
    assert engine.knn_query("vector", [1.0], 100, [])["knn"]["num_candidates"] == 200  # max(2k, 100)
    assert engine.knn_query("vector", [1.0], 100, [], candidates=400)["knn"]["num_candidates"] == 400
    assert engine.knn_query("vector", [1.0], 100, [], candidates=50)["knn"]["num_candidates"] == 100


def test_quantized_vectors_are_lucene_int8_scalar_quantisation_on_both_engines():
    opensearch = OpenSearchEngine("http://127.0.0.1:1")
    assert "encoder" not in opensearch.vector_mapping(384)["method"]["parameters"]
    assert opensearch.vector_mapping(384, quantized=True)["method"]["parameters"]["encoder"]["name"] == "sq"
    elasticsearch = ElasticsearchEngine("http://127.0.0.1:1")
    assert elasticsearch.vector_mapping(384)["index_options"]["type"] == "hnsw"
    assert elasticsearch.vector_mapping(384, quantized=True)["index_options"]["type"] == "int8_hnsw"


def test_oversampling_asks_each_engine_to_rescore_the_quantised_hits_by_float_vectors():
    opensearch, elasticsearch = OpenSearchEngine("http://127.0.0.1:1"), ElasticsearchEngine("http://127.0.0.1:1")
    rescored = opensearch.knn_query("vector", [1.0], 100, [], 400, oversample=2.0)["query"]["knn"]["vector"]
    assert rescored["rescore"] == {"oversample_factor": 2.0}
    assert "rescore" not in opensearch.knn_query("vector", [1.0], 100, [])["query"]["knn"]["vector"]
    assert elasticsearch.knn_query("vector", [1.0], 100, [], 400, oversample=2.0)["knn"]["rescore_vector"] == {
        "oversample": 2.0}
    assert "rescore_vector" not in elasticsearch.knn_query("vector", [1.0], 100, [])["knn"]
