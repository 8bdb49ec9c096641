"""How the kNN leg searches: its breadth (a fixed setting, or the small breadth below the size
threshold and the wide one above it, with each index counted at most once per TTL), and the float
rescoring of an index that stores int8 vectors (``INDEX_VECTORS``), as each engine's request carries them."""
from typing import Any, Mapping, Sequence

import pytest

from engines.elasticsearch import ElasticsearchEngine
from engines.opensearch import OpenSearchEngine
from es_mappings import HnswGraph, IndexLayout, IndexNames
from indexer.indices import create_version
from indexer.models import IndexModels
from query_rewriter.knn_breadth import (
    COUNT_TTL_S,
    LARGE_INDEX_CANDIDATES,
    LARGE_INDEX_DOCUMENTS,
    RESCORE_OVERSAMPLE,
    SMALL_INDEX_CANDIDATES,
    KnnBreadth,
    candidates_for,
    oversample_for,
)
from query_rewriter.search import HybridSearcher, SearchRequest
from settings import Settings
from tests.unit.test_bench_relevance import CountingEncoder, FakeEngine


class SizedEngine(FakeEngine):
    """Answers ``_count`` from a table and records the kNN breadth of every search body."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__("http://fake")
        self.sizes = sizes
        self.counted: list[str] = []
        self.breadths: list[int | None] = []
        self.oversamples: list[float | None] = []

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        self.counted.append(index)
        return self.sizes[index]

    def knn_query(self, field: str, vector: Sequence[float], k: int, filters: Any,
                  candidates: int | None = None, oversample: float | None = None) -> dict[str, Any]:
        self.breadths.append(candidates)
        self.oversamples.append(oversample)
        return super().knn_query(field, vector, k, filters, candidates, oversample)


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
    searcher = HybridSearcher(engine, lambda: "idx", lambda _: CountingEncoder(), breadth=KnnBreadth(engine))
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


def test_int8_vectors_are_rescored_and_float_ones_are_not():
    assert oversample_for("int8") == RESCORE_OVERSAMPLE
    assert oversample_for("float") is None


def test_the_searcher_rescores_the_index_it_searches_when_that_index_holds_int8_vectors():
    engine = SizedEngine({"idx": 10})
    searcher = HybridSearcher(engine, lambda: "idx", lambda _: CountingEncoder(),
                              oversample=lambda index: oversample_for("int8" if index == "idx" else "float"))
    searcher.search(SearchRequest("shoes", mode="hybrid"))
    assert engine.oversamples == [RESCORE_OVERSAMPLE]


def test_a_new_index_version_stores_and_records_the_settings_vectors_and_builds_its_graph():
    sent: dict[str, Any] = {}

    class CreatingEngine(SizedEngine):
        def create_index(self, index: str, body: Mapping[str, Any]) -> bool:
            sent[index] = body
            return True

        def vector_mapping(
            self, dimension: int, quantized: bool = False, graph: HnswGraph = HnswGraph()
        ) -> dict[str, Any]:
            return {"dimension": dimension, "quantized": quantized, "graph": str(graph)}

    engine = CreatingEngine({})
    create_version(engine, IndexNames("shop"), 1, 4, IndexLayout(vectors="int8", graph=HnswGraph(16, 128)),
                   meta={"model": {"encoder": "m"}})
    mappings = sent["shop-v1"]["mappings"]
    assert mappings["_meta"] == {"model": {"encoder": "m"}, "vectors": "int8"}
    assert mappings["properties"]["vector"] == {"dimension": 4, "quantized": True, "graph": "16:128"}
    create_version(engine, IndexNames("shop"), 2, 4, IndexLayout())
    assert sent["shop-v2"]["mappings"]["_meta"] == {"vectors": "float"}
    assert sent["shop-v2"]["mappings"]["properties"]["vector"] == {"dimension": 4, "quantized": False,
                                                                   "graph": "32:256"}


def test_the_vectors_setting_accepts_float_or_int8_and_says_so_otherwise():
    assert Settings.from_env({"INDEX_VECTORS": "int8"}).index_vectors == "int8"
    assert Settings.from_env({}).index_vectors == "float"
    with pytest.raises(ValueError, match="INDEX_VECTORS='int4'.*choose one of float, int8"):
        Settings.from_env({"INDEX_VECTORS": "int4"})
    with pytest.raises(ValueError, match="int4"):
        IndexLayout(vectors="int4")


def test_the_registry_reads_how_each_index_stores_its_vectors_from_its_meta():
    class MetaEngine(SizedEngine):
        def index_exists(self, index: str) -> bool:
            return index != "missing"

        def mapping_meta(self, index: str) -> dict[str, Any]:
            return {"vectors": "int8"} if index == "v2" else {}

    models = IndexModels(MetaEngine({}), IndexNames("p"), lambda spec: CountingEncoder(), "minilm")
    assert [models.vectors_of(i) for i in ("v2", "v1", "missing")] == ["int8", "float", "float"]
