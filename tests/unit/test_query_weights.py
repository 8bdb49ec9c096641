"""Per-query blend weights: features, the bounded and deterministic model, its fallback, learning."""
import math

import pytest

from query_rewriter.learn_weights import Example, cross_validate, fit, learn, score, target
from query_rewriter.query_weights import FEATURES, BlendWeightModel, query_features

BM25 = [("a", 9.0), ("b", 3.0), ("c", 1.0)]
KNN = [("c", 0.8), ("a", 0.6), ("d", 0.5)]


def test_features_are_computed_from_the_text_and_the_legs():
    f = query_features("puma 244 shoes", BM25, KNN)
    assert f == {
        "words": 3.0, "digit_words": 1.0, "bm25_top": pytest.approx(math.log(10.0)),
        "bm25_margin": pytest.approx((9.0 - 3.0) / 9.0), "knn_top": 0.8, "knn_margin": pytest.approx(0.2),
        "overlap": 2 / 10,  # a and c are in both top 10s
    }
    assert query_features("x", BM25[:1], KNN) is None


def _model(**changes):
    n = len(FEATURES)
    base = dict(global_weight=0.4, intercept=0.4, coef=(0.0,) * n, mean=(0.0,) * n, scale=(1.0,) * n)
    coef = list(base["coef"])
    coef[FEATURES.index("digit_words")] = 0.27
    return BlendWeightModel(**{**base, "coef": tuple(coef), **changes})


def test_the_model_is_linear_then_clipped_and_rounded_to_its_step():
    model = _model()
    features = dict.fromkeys(FEATURES, 0.0)
    assert model.bm25_weight(features) == 0.4
    assert model.bm25_weight({**features, "digit_words": 1.0}) == 0.7  # 0.4 + 0.27 = 0.67 -> 0.7 (step 0.1)
    assert model.bm25_weight({**features, "digit_words": 10.0}) == 0.9  # clipped to high
    assert model.bm25_weight({**features, "digit_words": -10.0}) == 0.1  # clipped to low
    assert model.weights({**features, "digit_words": 1.0}) == {"bm25": 0.7, "knn": 0.3}


def test_missing_or_non_finite_features_fall_back_to_the_global_weight():
    model = _model()
    assert model.bm25_weight(None) == 0.4
    assert model.bm25_weight({"words": 1.0}) == 0.4
    assert model.bm25_weight({**dict.fromkeys(FEATURES, 0.0), "knn_top": math.nan}) == 0.4


def test_the_model_refuses_inconsistent_shapes_and_bounds():
    with pytest.raises(ValueError):
        _model(coef=(0.0,))
    with pytest.raises(ValueError):
        _model(global_weight=0.95)
    with pytest.raises(ValueError):
        _model(scale=(0.0,) * len(FEATURES))


def test_save_and_load_round_trip(tmp_path):
    model = _model(alpha=10.0)
    model.save(tmp_path / "weights.json")
    assert BlendWeightModel.load(tmp_path / "weights.json") == model


def test_target_is_the_mean_best_weight_and_how_much_the_weight_matters():
    assert target({0.1: 0.2, 0.5: 0.9, 0.9: 0.9}) == (pytest.approx(0.7), pytest.approx(0.7))
    assert target({0.1: 0.5, 0.9: 0.5}) == (pytest.approx(0.5), 0.0)


def _examples(n=40):
    """Queries with digits want BM25 (0.9), the others want the dense leg (0.1)."""
    out = []
    for i in range(n):
        digits = float(i % 2)
        features = {**dict.fromkeys(FEATURES, 0.0), "digit_words": digits, "words": float(i % 5)}
        curve = {0.1: 1.0 - digits, 0.5: 0.5, 0.9: digits}
        out.append(Example(features, curve))
    return out


def test_learning_finds_the_feature_that_decides_and_beats_the_global_weight():
    examples = _examples()
    model, table = learn(examples, global_weight=0.5)
    assert model.alpha is not None  # a model beat "the global weight only" in cross-validation
    assert table[model.alpha] > table[None]
    assert score(model, examples) == 1.0  # every query gets its best weight
    assert model == learn(examples, global_weight=0.5)[0]  # deterministic


def test_flat_or_featureless_queries_leave_the_global_weight():
    flat = [Example(dict.fromkeys(FEATURES, 1.0), {0.1: 0.5, 0.9: 0.5})] * 20
    assert fit(flat, 0.3, alpha=1.0) == BlendWeightModel.constant(0.3)
    assert fit([Example(None, {0.1: 1.0, 0.9: 0.0})] * 20, 0.3, alpha=1.0) == BlendWeightModel.constant(0.3)
    assert fit(_examples(), 0.3, alpha=None) == BlendWeightModel.constant(0.3)
    assert cross_validate(flat, 0.3, alphas=(None,)) == {None: 0.5}
