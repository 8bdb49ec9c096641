"""Minimum scores: drop weak candidates from a leg before the blend, or from the blend after it.

A leg's minimum is on its raw engine score: BM25 scores are unbounded, kNN scores are the
engine's similarity in [0, 1] (``(1 + cosine) / 2`` on both engines). A leg is cut before its
scores are normalised, so the blend sees only the candidates that passed. The fused minimum is on
the blended score, whose scale the blend method sets (min-max and z-score means of normalised
legs; RRF sums of ``weight / (60 + rank)``). Each cut reports how many candidates it removed, so
a caller can tell a threshold that empties the results from a query that matched nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, TypeVar

from query_rewriter.blend import Blended, Leg

T = TypeVar("T")


@dataclass(frozen=True)
class Thresholds:
    """Optional minimum scores; ``None`` keeps everything."""

    bm25: float | None = None
    knn: float | None = None
    fused: float | None = None

    def __post_init__(self) -> None:
        for name in ("bm25", "knn", "fused"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"the minimum {name} score must be a finite number >= 0, not {value}")

    def for_leg(self, leg: str) -> float | None:
        return {"bm25": self.bm25, "knn": self.knn}[leg]

    @property
    def on_legs(self) -> bool:
        return self.bm25 is not None or self.knn is not None


def _cut(items: Sequence[T], scores: Sequence[float], minimum: float | None) -> tuple[list[T], int]:
    if minimum is None:
        return list(items), 0
    kept = [item for item, score in zip(items, scores) if score >= minimum]
    return kept, len(items) - len(kept)


def cut_leg(leg: Leg, minimum: float | None) -> tuple[list[tuple[str, float]], int]:
    """The leg's ``(doc_id, score)`` hits scoring at least ``minimum``, and how many were removed."""
    return _cut(list(leg), [score for _, score in leg], minimum)


def cut_fused(blended: Sequence[Blended], minimum: float | None) -> tuple[list[Blended], int]:
    """The blended hits scoring at least ``minimum``, and how many were removed."""
    return _cut(blended, [item.score for item in blended], minimum)
