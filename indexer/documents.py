"""Event -> engine document (without the vector) and event -> encoder input."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acebert.encoder import ProductInput
from indexer.events import ProductUpsert


def category_path(category: str | None) -> list[str]:
    """Every ancestor of ``"A > B > C"``: ``["A", "A > B", "A > B > C"]``, for prefix filters."""
    if not category:
        return []
    parts = [p.strip() for p in category.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]


def resolve_image(image: str | None, image_root: Path) -> Path | None:
    if not image:
        return None
    path = Path(image)
    return path if path.is_absolute() else image_root / path


def encoder_input(event: ProductUpsert, image_root: Path) -> ProductInput:
    """What the product tower encodes: the title and the image file, if the event names one."""
    return ProductInput(title=event.title, image=resolve_image(event.image, image_root))


def build_document(event: ProductUpsert, *, model_version: str, has_image: bool) -> dict[str, Any]:
    """The stored document for an upsert; the vector is attached by the caller."""
    document: dict[str, Any] = {
        "product_id": event.product_id,
        "title": event.title,
        "description": event.description,
        "category": event.category,
        "category_path": category_path(event.category),
        "brand": event.brand,
        "attributes": dict(event.attributes),
        "price": event.price,
        "image": event.image,
        "has_image": has_image,
        "model_version": model_version,
        "event_version": event.version,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    return {key: value for key, value in document.items() if value is not None}
