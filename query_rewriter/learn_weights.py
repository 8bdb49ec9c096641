"""Learning a :class:`~query_rewriter.query_weights.BlendWeightModel` from judged queries (offline).

Input: for each query of a tuning split (dev or train, never test), its features and its curve
``{bm25_weight: nDCG@10}`` over a weight grid, as the relevance benchmark computes them. Each
query's target is the mean of the weights that reach its best nDCG; a query whose curve is flat
says nothing about the weight and is left out, and the others count by how much the weight
matters to them (best minus worst). The ridge penalty is chosen by k-fold cross-validation on the
same split, scoring each fold by the nDCG its predicted weights reach; "no model" (the global
weight for every query) is one of the candidates, so a model that does not help is not kept.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from query_rewriter.query_weights import FEATURES, BlendWeightModel

ALPHAS: tuple[float, ...] = (1.0, 10.0, 100.0)
FOLDS = 5


@dataclass(frozen=True)
class Example:
    """One tuning query: its features (None when a leg was too short) and nDCG@10 per BM25 weight."""

    features: Mapping[str, float] | None
    curve: Mapping[float, float]


def target(curve: Mapping[float, float]) -> tuple[float, float]:
    """(the mean of the weights that reach the best nDCG, how much the weight matters)."""
    best = max(curve.values())
    winners = [w for w, value in curve.items() if value >= best - 1e-12]
    return float(np.mean(winners)), best - min(curve.values())


def fit(examples: Sequence[Example], global_weight: float, alpha: float | None) -> BlendWeightModel:
    """A ridge model on ``examples`` (``alpha=None``: the global weight for every query)."""
    usable = [(e.features, *target(e.curve)) for e in examples if e.features is not None]
    usable = [(f, t, importance) for f, t, importance in usable if importance > 0]
    if alpha is None or len(usable) < len(FEATURES) + 2:
        return BlendWeightModel.constant(global_weight)
    from sklearn.linear_model import Ridge

    x = np.array([[f[name] for name in FEATURES] for f, _, _ in usable])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    regression = Ridge(alpha=alpha).fit((x - mean) / scale, np.array([t for _, t, _ in usable]),
                                        sample_weight=np.array([i for _, _, i in usable]))
    model = BlendWeightModel.constant(global_weight)
    return BlendWeightModel(global_weight, float(regression.intercept_), tuple(map(float, regression.coef_)),
                            tuple(map(float, mean)), tuple(map(float, scale)), low=model.low, high=model.high,
                            alpha=alpha)


def score(model: BlendWeightModel, examples: Sequence[Example]) -> float:
    """Mean nDCG@10 the model's weights reach (each query's curve read at the predicted weight)."""
    values = []
    for example in examples:
        weight = model.bm25_weight(example.features)
        nearest = min(example.curve, key=lambda w: abs(w - weight))
        values.append(example.curve[nearest])
    return float(np.mean(values)) if values else 0.0


def cross_validate(examples: Sequence[Example], global_weight: float, alphas: Sequence[float | None] = (None, *ALPHAS),
                   folds: int = FOLDS, seed: int = 0) -> dict[float | None, float]:
    """Mean held-out nDCG@10 per candidate penalty, over seeded folds of ``examples``."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    parts = [order[k::folds] for k in range(folds)]
    results: dict[float | None, float] = {}
    for alpha in alphas:
        held_out = []
        for part in parts:
            inside = set(part)
            model = fit([examples[i] for i in order if i not in inside], global_weight, alpha)
            held_out.extend(score(model, [examples[i]]) for i in part)
        results[alpha] = float(np.mean(held_out))
    return results


def learn(examples: Sequence[Example], global_weight: float, seed: int = 0) -> tuple[BlendWeightModel, dict[float | None, float]]:
    """The cross-validated best model on all of ``examples``, and the cross-validation table.

    Ties go to the simpler model: the global weight first, then the larger penalty.
    """
    table = cross_validate(examples, global_weight, seed=seed)
    ranked = sorted(table, key=lambda a: (-round(table[a], 6), -(a if a is not None else float("inf"))))
    return fit(examples, global_weight, ranked[0]), table
