"""The two legs' request bodies, engine-neutral except for the kNN clause (from the adapter).

Both legs get the same filter clauses, so a filter can never be honoured by one leg and not the
other: the blend only ever sees products that pass the filters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from engines import SearchEngine
from es_mappings import UNSHOWN_FIELDS, VECTOR_FIELD
from es_mappings.schema import BM25_FIELDS

SOURCE = {"excludes": list(UNSHOWN_FIELDS)}


@dataclass(frozen=True)
class Filters:
    """Structured filters applied to both legs."""

    category: str | None = None  # a category path or any ancestor: "Apparel" or "Apparel > Topwear"
    brand: str | None = None
    price_min: float | None = None
    price_max: float | None = None

    def clauses(self) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if self.category:
            clauses.append({"term": {"category_path": self.category}})
        if self.brand:
            clauses.append({"term": {"brand.keyword": self.brand}})
        if self.price_min is not None or self.price_max is not None:
            bounds = {"gte": self.price_min, "lte": self.price_max}
            clauses.append({"range": {"price": {k: v for k, v in bounds.items() if v is not None}}})
        return clauses


def bm25_query(text: str, filters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The BM25 clause: a multi_match over the text fields, boosted by field, plus filters."""
    return {
        "bool": {
            "must": [
                {"multi_match": {"query": text, "fields": list(BM25_FIELDS), "type": "best_fields",
                                 "tie_breaker": 0.3}}
            ],
            "filter": list(filters),
        }
    }


def bm25_body(text: str, filters: Sequence[dict[str, Any]], size: int) -> dict[str, Any]:
    return {"size": size, "_source": SOURCE, "query": bm25_query(text, filters)}


def knn_body(
    engine: SearchEngine, vector: Sequence[float], filters: Sequence[dict[str, Any]], size: int,
    candidates: int | None = None, oversample: float | None = None,
) -> dict[str, Any]:
    return {**engine.knn_query(VECTOR_FIELD, vector, size, filters, candidates, oversample), "_source": SOURCE}
