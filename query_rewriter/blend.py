"""Score normalisation and fusion as pure functions over per-leg ranked lists.

A leg is a ranked list of ``(doc_id, score)``. Rules, decided up front (min-max and RRF follow
OpenSearch neural-search's processors, so the server-side comparison is like for like; z-score
treats missing documents differently from neural-search, see below):
- min-max over each leg's whole candidate list; a single hit, or all scores equal, normalise
  to 1.0; a matched document never normalises below ``MIN_MAX_FLOOR`` so "matched, but lowest"
  still beats "not matched" (which counts 0).
- z-score: ``(s - mean) / std`` per leg; std 0 gives 0 for all; a document a leg did not
  return counts as that leg's lowest z-score, so missing is never better than matched.
- RRF: ``sum_leg weight / (k + rank)`` with 1-based ranks; missing contributes nothing.
Weighted sums divide by the sum of weights (an arithmetic mean), so scores stay comparable
across weight settings. Ties break by doc id, so a ranking (and its pagination) is stable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence, get_args

Leg = Sequence[tuple[str, float]]
Method = Literal["min_max", "z_score", "rrf"]
METHODS: tuple[Method, ...] = get_args(Method)
MIN_MAX_FLOOR = 0.001
RRF_K = 60


@dataclass(frozen=True)
class Blended:
    doc_id: str
    score: float
    raw: dict[str, float] = field(default_factory=dict)         # leg -> engine score
    normalized: dict[str, float] = field(default_factory=dict)  # leg -> normalised score
    ranks: dict[str, int] = field(default_factory=dict)         # leg -> 1-based rank


def min_max(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low <= 0:
        return [1.0] * len(scores)
    return [max((s - low) / (high - low), MIN_MAX_FLOOR) for s in scores]


def z_score(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if std == 0:
        return [0.0] * len(scores)
    return [(s - mean) / std for s in scores]


NORMALIZERS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "min_max": min_max,
    "z_score": z_score,
}


def _check(legs: Mapping[str, Leg], weights: Mapping[str, float]) -> None:
    if set(weights) != set(legs):
        raise ValueError(f"weights name legs {sorted(weights)} but the legs are {sorted(legs)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {dict(weights)}")
    for name, leg in legs.items():
        ids = [doc_id for doc_id, _ in leg]
        if len(ids) != len(set(ids)):
            raise ValueError(f"leg {name!r} lists a document twice")


def _per_document(legs: Mapping[str, Leg]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Each document's raw score and 1-based rank in every leg that returned it."""
    raw: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, leg in legs.items():
        for rank, (doc_id, score) in enumerate(leg, start=1):
            if doc_id not in raw:
                raw[doc_id], ranks[doc_id] = {}, {}
            raw[doc_id][name] = score
            ranks[doc_id][name] = rank
    return raw, ranks


def _ranked(
    scores: Mapping[str, float], raw: Mapping[str, dict[str, float]], normalized: Mapping[str, dict[str, float]],
    ranks: Mapping[str, dict[str, int]],
) -> list[Blended]:
    """Documents by descending score, ties by doc id; each :class:`Blended` is built once, here, because
    a search blends two windows of a hundred hits per request and object creation is most of its cost."""
    order = sorted(scores, key=lambda doc_id: (-scores[doc_id], doc_id))
    return [Blended(doc_id, scores[doc_id], raw[doc_id], normalized[doc_id], ranks[doc_id]) for doc_id in order]


def weighted_normalized(
    legs: Mapping[str, Leg], weights: Mapping[str, float], normalizer: str = "min_max"
) -> list[Blended]:
    """Normalise each leg, then the weighted arithmetic mean per document."""
    try:
        normalize = NORMALIZERS[normalizer]
    except KeyError:
        raise ValueError(f"unknown normalizer {normalizer!r}; expected one of {sorted(NORMALIZERS)}") from None
    _check(legs, weights)
    raw, ranks = _per_document(legs)
    normalized: dict[str, dict[str, float]] = {doc_id: {} for doc_id in raw}
    missing: dict[str, float] = {}
    for name, leg in legs.items():
        values = normalize([score for _, score in leg])
        for (doc_id, _), value in zip(leg, values):
            normalized[doc_id][name] = value
        missing[name] = 0.0 if normalizer == "min_max" else min(values, default=0.0)
    total = sum(weights.values())
    terms = [(name, weight, missing[name]) for name, weight in weights.items()]
    scores: dict[str, float] = {}
    for doc_id, doc in normalized.items():
        score = 0.0
        for name, weight, absent in terms:
            score += weight * doc.get(name, absent)
        scores[doc_id] = score / total
    return _ranked(scores, raw, normalized, ranks)


def rrf(legs: Mapping[str, Leg], weights: Mapping[str, float], k: int = RRF_K) -> list[Blended]:
    """Weighted reciprocal rank fusion."""
    if k <= 0:
        raise ValueError(f"RRF k must be positive, got {k}")
    _check(legs, weights)
    raw, ranks = _per_document(legs)
    normalized = {doc_id: {name: 1.0 / (k + rank) for name, rank in doc_ranks.items()}
                  for doc_id, doc_ranks in ranks.items()}
    scores = {doc_id: sum(weights[name] * value for name, value in values.items())
              for doc_id, values in normalized.items()}
    return _ranked(scores, raw, normalized, ranks)


def leg_weights(bm25_weight: float) -> dict[str, float]:
    """The two legs' weights from the BM25 one: kNN gets the rest, rounded (0.7 gives 0.3, not
    0.30000000000000004), so weights read the same in requests, reports and ``blend.json``."""
    return {"bm25": bm25_weight, "knn": round(1.0 - bm25_weight, 6)}


def blend(legs: Mapping[str, Leg], weights: Mapping[str, float], method: Method = "min_max") -> list[Blended]:
    """Fuse legs with ``method``: ``min_max``, ``z_score`` (normalise + weighted mean) or ``rrf``."""
    if method == "rrf":
        return rrf(legs, weights)
    if method in NORMALIZERS:
        return weighted_normalized(legs, weights, method)
    raise ValueError(f"unknown blend method {method!r}; expected one of {list(METHODS)}")


def blend_tiers(
    legs: Mapping[str, Leg], weights: Mapping[str, float], method: Method, depths: Sequence[int]
) -> list[list[Blended]]:
    """Fuse growing windows of the same legs into tiers: tier ``j`` is the blend of each leg's top
    ``depths[j]`` hits, less every document of an earlier tier.

    Why: a blend over a deeper window orders its top differently (min-max and z-score depend on
    the whole window), so cutting page 12 from a deeper blend than page 1 could repeat or skip
    products. Tiers keep the first window's order as it is and append what each deeper window
    adds, so a page of any depth is cut from one list that only ever grows at its end.
    """
    if list(depths) != sorted(set(depths)) or not depths or depths[0] < 1:
        raise ValueError(f"tier depths must be positive and increasing, got {list(depths)}")
    seen: set[str] = set()
    tiers: list[list[Blended]] = []
    for depth in depths:
        window = {name: leg[:depth] for name, leg in legs.items()}
        tier = [item for item in blend(window, weights, method) if item.doc_id not in seen]
        seen.update(item.doc_id for item in tier)
        tiers.append(tier)
    return tiers


def tier_depths(first: int, needed: int, limit: int) -> list[int]:
    """The window depths, doubling from ``first``, until one holds ``needed`` (at most ``limit``)."""
    depths = [first]
    while depths[-1] < min(needed, limit):
        depths.append(min(depths[-1] * 2, limit))
    return depths
