"""A catalogue file (``products.csv``: product_id, title, category, image) as upsert events."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from acebert.data import load_catalog


def catalog_events(directory: str | Path, version: int = 1, limit: int | None = None) -> list[dict[str, Any]]:
    """One upsert event per catalogue row, image paths made absolute, all at ``version``."""
    frame = load_catalog(directory)
    if limit is not None:
        frame = frame.head(limit)
    events = []
    for row in frame.itertuples(index=False):
        event: dict[str, Any] = {
            "type": "upsert",
            "product_id": str(row.product_id),
            "version": version,
            "title": row.title,
        }
        if getattr(row, "category", ""):
            event["category"] = row.category
        if row.image:
            event["image"] = row.image
        events.append(event)
    return events
