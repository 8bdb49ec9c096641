"""Facet counts over a result list: category paths, brands and price ranges.

The counts are taken over the candidates of the first window (each leg's top ``depth`` after the
minimum scores), from the ``_source`` the legs already returned: no aggregation request, and the
same numbers on OpenSearch and Elasticsearch. Why those documents: the BM25 match set would miss
every product that only the kNN leg found, and the kNN leg has no match set at all (every product
has a nearest-neighbour distance), so only the fused candidates agree with the hits shown. The
counts are computed once per query and do not change while a caller pages through it.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

# Price-range edges: a 1-2-5 series, so the buckets suit any currency's magnitude.
PRICE_EDGES = [m * 10**e for e in range(0, 8) for m in (1, 2, 5)]
MAX_VALUES = 20  # per facet, most frequent first


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    low: float | None = None   # price ranges only: [low, high)
    high: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "count": self.count}
        if self.low is not None or self.high is not None:
            out.update({"from": self.low, "to": self.high})
        return out


Facets = dict[str, list[FacetValue]]


@lru_cache(maxsize=4096)
def category_paths(category: str) -> tuple[str, ...]:
    """``"Apparel > Topwear"`` and each ancestor (``"Apparel"``): a category filter matches any.

    Cached: a catalogue has a few hundred category paths and every search counts them over its
    whole candidate window, so splitting and joining each time was most of the facets' cost.
    """
    parts = [part.strip() for part in category.split(">") if part.strip()]
    return tuple(" > ".join(parts[: i + 1]) for i in range(len(parts)))


def price_range(price: float) -> tuple[float, float | None]:
    """The 1-2-5 bucket ``[low, high)`` that holds ``price`` (``high`` None past the last edge)."""
    position = bisect.bisect_right(PRICE_EDGES, price)
    low = float(PRICE_EDGES[position - 1]) if position else 0.0
    return low, float(PRICE_EDGES[position]) if position < len(PRICE_EDGES) else None


def _label(low: float, high: float | None) -> str:
    return f"{low:g}-{high:g}" if high is not None else f"{low:g}+"


def _top(counts: Mapping[str, int]) -> list[FacetValue]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FacetValue(value, count) for value, count in ranked[:MAX_VALUES]]


def facet_counts(sources: Iterable[Mapping[str, Any]]) -> Facets:
    """Counts of each category path (ancestors included), brand and price range in ``sources``."""
    categories: dict[str, int] = {}
    brands: dict[str, int] = {}
    prices: dict[tuple[float, float | None], int] = {}
    for source in sources:
        for path in category_paths(str(source.get("category") or "")):
            categories[path] = categories.get(path, 0) + 1
        brand = source.get("brand")
        if brand:
            brands[str(brand)] = brands.get(str(brand), 0) + 1
        price = source.get("price")
        if isinstance(price, (int, float)) and math.isfinite(price) and price >= 0:
            bucket = price_range(float(price))
            prices[bucket] = prices.get(bucket, 0) + 1
    return {
        "category": _top(categories),
        "brand": _top(brands),
        "price": [FacetValue(_label(low, high), count, low, high) for (low, high), count in sorted(prices.items())],
    }
