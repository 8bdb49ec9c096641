"""Per-query blend weights: the BM25 leg's weight predicted from the query and its two legs.

One global weight treats "Puma 244" and "comfortable shoes for a wedding" alike, yet BM25 is
right about the first and the dense model about the second. A :class:`BlendWeightModel` reads a
few features that tell the two apart, all of the query text and of the two legs' results (never
of a query id or a judgment), and predicts the BM25 weight (the kNN leg gets ``1 - w``):

- ``words``: query length in words; ``digit_words``: words holding a digit (sizes, model numbers);
- ``bm25_top``: log(1 + BM25 top score); ``bm25_margin``: (top - second) / top;
- ``knn_top``: the dense top score; ``knn_margin``: top - second;
- ``overlap``: the share of the two legs' top 10 they have in common.

The model is a ridge regression over standardised features, clipped to ``[low, high]`` and
rounded to ``step`` so its answers are a small, inspectable set. It falls back to
``global_weight`` when a feature cannot be computed (a leg with fewer than two hits). It is
learned offline (:mod:`query_rewriter.learn_weights`) and stored as JSON with the model version.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from query_rewriter.blend import Leg, leg_weights

FEATURES: tuple[str, ...] = ("words", "digit_words", "bm25_top", "bm25_margin", "knn_top", "knn_margin", "overlap")
OVERLAP_AT = 10
_WORD = re.compile(r"\w+")


def query_features(text: str, bm25: Leg, knn: Leg) -> dict[str, float] | None:
    """The features of one query and its two legs, or None when a leg has fewer than two hits."""
    if len(bm25) < 2 or len(knn) < 2:
        return None
    words = _WORD.findall(text.lower())
    top_bm25, second_bm25 = bm25[0][1], bm25[1][1]
    top_ids = {doc for doc, _ in bm25[:OVERLAP_AT]}
    knn_ids = {doc for doc, _ in knn[:OVERLAP_AT]}
    return {
        "words": float(len(words)),
        "digit_words": float(sum(any(ch.isdigit() for ch in word) for word in words)),
        "bm25_top": math.log1p(max(top_bm25, 0.0)),
        "bm25_margin": (top_bm25 - second_bm25) / top_bm25 if top_bm25 > 0 else 0.0,
        "knn_top": knn[0][1],
        "knn_margin": knn[0][1] - knn[1][1],
        "overlap": len(top_ids & knn_ids) / OVERLAP_AT,
    }


@dataclass(frozen=True)
class BlendWeightModel:
    """``w = round_step(clip(intercept + sum(coef * (x - mean) / scale), low, high))``."""

    global_weight: float
    intercept: float
    coef: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    features: tuple[str, ...] = FEATURES
    low: float = 0.1
    high: float = 0.9
    step: float = 0.1
    alpha: float | None = None  # the ridge penalty it was learned with (None: global weight only)

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.coef), len(self.mean), len(self.scale)}
        if len(sizes) != 1:
            raise ValueError(f"features, coef, mean and scale differ in length: {sorted(sizes)}")
        if not 0.0 <= self.low <= self.global_weight <= self.high <= 1.0:
            raise ValueError(f"need 0 <= low <= global_weight <= high <= 1, got {self.low}, "
                             f"{self.global_weight}, {self.high}")
        if any(s <= 0 for s in self.scale) or self.step <= 0:
            raise ValueError("feature scales and the step must be positive")

    @classmethod
    def constant(cls, global_weight: float) -> BlendWeightModel:
        """The global weight for every query: what a blend without a learned model does."""
        n = len(FEATURES)
        return cls(global_weight, global_weight, (0.0,) * n, (0.0,) * n, (1.0,) * n,
                   low=min(global_weight, 0.1), high=max(global_weight, 0.9))

    def bm25_weight(self, features: Mapping[str, float] | None) -> float:
        """The BM25 weight for a query's features; the global weight when any is missing or not finite."""
        if features is None or any(not math.isfinite(features.get(name, math.nan)) for name in self.features):
            return self.global_weight
        value = self.intercept + sum(
            c * (features[name] - m) / s for name, c, m, s in zip(self.features, self.coef, self.mean, self.scale)
        )
        clipped = min(max(value, self.low), self.high)
        return round(round(clipped / self.step) * self.step, 6)

    def weights(self, features: Mapping[str, float] | None) -> dict[str, float]:
        return leg_weights(self.bm25_weight(features))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> BlendWeightModel:
        raw = json.loads(path.read_text())
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})
