"""The blend weight a trained model is served with: chosen on held-out judgments, written next to
the model, read back by the searcher's model registry."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from acebert.blend_choice import (
    BLEND_FILE,
    BlendChoice,
    best_setting,
    choose_bm25_weight,
    choose_on_catalog,
    read_blend,
)
from acebert.loading import blend_weights
from es_mappings import IndexNames
from indexer.models import IndexModels
from query_rewriter.search import DEFAULT_WEIGHTS, HybridSearcher, SearchRequest
from service.http import request_weights
from tests.unit.test_bench_relevance import FakeEngine
from tests.unit.test_query_cache import CountingEncoder


class MetaEngine(FakeEngine):
    """Indices whose mapping records the encoder spec of their model."""

    def __init__(self, specs: dict[str, str]) -> None:
        super().__init__("http://fake")
        self.specs = specs

    def index_exists(self, index: str) -> bool:
        return True

    def mapping_meta(self, index: str) -> dict:
        return {"model": {"encoder": self.specs[index]}} if index in self.specs else {}

# One query whose one relevant product "a" BM25 ranks first and the dense leg last.
# Min-max: BM25 a=1, b=0.5, c=0; dense b=1, c=0.75, a=0. Blended at weight w:
# a = w, b = 0.5w + (1 - w), c = 0.75(1 - w): "a" is first only once w > 2/3.
BM25 = {"q": [("a", 10.0), ("b", 5.0), ("c", 0.0)]}
DENSE = {"q": [("b", 0.9), ("c", 0.8), ("a", 0.5)]}
QRELS = {"q": {"a": 2}}


def test_best_setting_is_the_argmax_and_the_first_on_ties():
    assert best_setting({0.1: 0.30, 0.5: 0.42, 0.9: 0.41}) == 0.5
    assert best_setting({0.3: 0.5, 0.7: 0.5}) == 0.3
    with pytest.raises(ValueError):
        best_setting({})


def test_the_weight_with_the_best_held_out_ndcg_is_chosen_first_on_ties():
    choice = choose_bm25_weight(BM25, DENSE, QRELS)
    assert choice.bm25_weight == 0.7  # 0.7, 0.8 and 0.9 all put "a" first: the first of them
    assert choice.ndcg_by_weight[0.7] == pytest.approx(1.0)
    assert choice.ndcg_by_weight[0.6] == pytest.approx(1 / math.log2(3))  # b 0.7 > a 0.6: rank 2
    assert choice.ndcg_by_weight[0.1] == pytest.approx(1 / math.log2(4))  # b, c (0.675) > a (0.1): rank 3
    assert choice.weights == {"bm25": 0.7, "knn": 0.3} and choice.queries == 1


def test_the_catalogue_choice_computes_bm25_over_title_and_category():
    """Only "a" holds the query word, in its category, so BM25 ranks it alone: a = w against
    b = 1 - w and c = 0.75 (1 - w): "a" is first from w = 1/2 (a tie keeps the BM25 leg's product
    first, as the blend orders ties) and third below 3/7."""
    catalog = pd.DataFrame({"product_id": ["a", "b", "c"], "title": ["plain tee", "red tee", "blue tee"],
                            "category": ["Apparel Sandal", None, "Apparel"]})
    choice = choose_on_catalog(catalog, {"q": "sandal", "unjudged": "tee"}, QRELS | {"other": {"b": 2}}, DENSE)
    assert choice.bm25_weight == 0.5 and choice.queries == 1
    assert choice.ndcg_by_weight[0.4] == pytest.approx(1 / math.log2(4))  # b 0.6, c 0.45 > a 0.4


def test_a_query_bm25_did_not_match_blends_the_dense_leg_alone():
    choice = choose_bm25_weight({}, {"q": [("a", 0.9), ("b", 0.1)]}, QRELS)
    assert all(value == pytest.approx(1.0) for value in choice.ndcg_by_weight.values())
    assert choice.bm25_weight == 0.1


def test_the_blend_file_round_trips_and_a_missing_one_means_the_default(tmp_path: Path):
    assert read_blend(tmp_path) is None
    path = BlendChoice(0.2, {0.1: 0.5, 0.2: 0.6}, 12).write(tmp_path)
    assert path == tmp_path / BLEND_FILE
    assert read_blend(tmp_path) == {"bm25": 0.2, "knn": 0.8}
    assert json.loads(path.read_text())["ndcg@10_by_bm25_weight"] == {"0.1": 0.5, "0.2": 0.6}


@pytest.mark.parametrize("content", ["not json", '{"weights": [1]}', '{"weights": {"bm25": 2, "knn": 0}}',
                                     '{"weights": {"bm25": 0.5}}', '{"weights": {"bm25": NaN, "knn": 0.5}}'])
def test_a_broken_blend_file_is_refused_with_what_to_do(tmp_path: Path, content: str):
    (tmp_path / BLEND_FILE).write_text(content)
    with pytest.raises(ValueError, match="blend"):
        read_blend(tmp_path)


def test_a_models_weights_are_read_from_its_checkpoint_whatever_the_spec(tmp_path: Path):
    BlendChoice(0.1, {0.1: 0.9}, 3).write(tmp_path)
    expected = {"bm25": 0.1, "knn": 0.9}
    assert blend_weights(str(tmp_path)) == expected
    assert blend_weights(f"onnx-int8:{tmp_path}") == blend_weights(f"onnx:{tmp_path}") == expected
    assert blend_weights("minilm") is None
    assert blend_weights(str(tmp_path / "elsewhere")) is None


def test_the_searcher_blends_with_the_models_weights_unless_the_request_names_its_own():
    # FakeEngine's legs, min-max: BM25 b 1, c 6/7, a 0; kNN a 1, d 0.2, b 0.
    # At BM25 0.9: b 0.9 leads; at 0.1: a 0.9 leads.
    stored = {"idx": {"bm25": 0.9, "knn": 0.1}}
    searcher = HybridSearcher(FakeEngine("http://fake"), lambda: "idx", lambda _: CountingEncoder(), weights=stored.get)
    served = searcher.search(SearchRequest("shoes", known_item=False))
    assert served.weights == {"bm25": 0.9, "knn": 0.1} and served.hits[0].product_id == "b"
    asked = searcher.search(SearchRequest("shoes", weights={"bm25": 0.1, "knn": 0.9}, known_item=False))
    assert asked.weights == {"bm25": 0.1, "knn": 0.9} and asked.hits[0].product_id == "a"
    other = HybridSearcher(FakeEngine("http://fake"), lambda: "other", lambda _: CountingEncoder(), weights=stored.get)
    assert other.search(SearchRequest("shoes")).weights == DEFAULT_WEIGHTS  # a model without stored weights
    fixed = HybridSearcher.over(FakeEngine("http://fake"), CountingEncoder(), "idx", weights=stored["idx"])
    assert fixed.search(SearchRequest("shoes", known_item=False)).hits[0].product_id == "b"  # what a bench serves
    assert HybridSearcher.over(FakeEngine("http://fake"), CountingEncoder(), "idx").search(
        SearchRequest("shoes")).weights == DEFAULT_WEIGHTS


def test_the_registry_reads_each_models_weights_once():
    calls = []

    def blend(spec: str) -> dict[str, float] | None:
        calls.append(spec)
        return {"bm25": 0.2, "knn": 0.8} if spec == "trained" else None

    models = IndexModels(MetaEngine({"v2": "trained"}), IndexNames("p"), lambda spec: CountingEncoder(), "minilm",
                         blend=blend)
    assert models.weights_of("v2") == models.weights_of("v2") == {"bm25": 0.2, "knn": 0.8}
    assert models.weights_of("v1") is None  # recorded no model: the default spec, which has none
    assert calls == ["trained", "minilm"]


@pytest.mark.parametrize(("bm25", "knn", "expected"), [
    (None, None, None), (0.3, None, {"bm25": 0.3, "knn": 0.7}), (None, 0.8, {"bm25": 0.2, "knn": 0.8}),
    (0.3, 0.3, {"bm25": 0.3, "knn": 0.3}),
])
def test_the_apis_weights_leave_the_choice_to_the_model_unless_given(bm25, knn, expected):
    assert request_weights(bm25, knn) == expected
