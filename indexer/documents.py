"""Event -> engine document (without the vector), delete -> tombstone, and event -> encoder input."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acebert.encoder import ProductInput
from es_mappings import DIGEST_FIELD
from indexer.events import ProductDelete, ProductUpsert
from indexer.image_files import image_path, read_image_bytes


def category_path(category: str | None) -> list[str]:
    """Every ancestor of ``"A > B > C"``: ``["A", "A > B", "A > B > C"]``, for prefix filters."""
    if not category:
        return []
    parts = [p.strip() for p in category.split(">") if p.strip()]
    return [" > ".join(parts[: i + 1]) for i in range(len(parts))]


def encoder_input(event: ProductUpsert, image_root: Path) -> ProductInput:
    """What the product tower encodes: the title, the category and the image's bytes, if the event names one.

    The image is read here, under ``image_root`` only and under the size cap (see
    :mod:`indexer.image_files`); a refused image raises :class:`~acebert.images.ImageError` for this
    event alone. It is not decoded here: the write path checks the picture only when it goes to the
    tower (:func:`indexer.pipeline.index_events`), because a price change keeps the vector that the
    same bytes, checked then, already made.
    """
    image = read_image_bytes(image_path(event.image, image_root)) if event.image else None
    return ProductInput(title=event.title, image=image, category=event.category)


def input_digest(product: ProductInput) -> str:
    """A fingerprint of what the product tower reads: title, category and the image's bytes.

    Most events of a live catalogue change a price, a stock level or an attribute, which the tower
    never sees. The document keeps this digest next to its vector, so the next event with the same
    digest (and the same model) reuses the vector instead of encoding it again. The image's bytes,
    not its path, go in: a photo replaced under the same name is a new input. Each part is prefixed
    by its length, so no two inputs can run together into one digest.
    """
    if product.image is not None and not isinstance(product.image, bytes):
        raise TypeError("input_digest needs the image's bytes, as encoder_input reads them")
    digest = hashlib.blake2b(digest_size=16)
    for part in (product.title.encode(), (product.category or "").encode(), product.image or b""):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def build_document(event: ProductUpsert, *, model_version: str, has_image: bool, encoded_input: str) -> dict[str, Any]:
    """The stored document for an upsert; the vector is attached by the caller.

    ``encoded_input`` is the :func:`input_digest` of what made that vector.
    """
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
        DIGEST_FIELD: encoded_input,
        "event_version": event.version,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    return {key: value for key, value in document.items() if value is not None}


def tombstone(event: ProductDelete) -> dict[str, Any]:
    """What a delete leaves in the index: the product id, its version, and ``deleted``.

    A tombstone has no text and no vector, so neither the BM25 nor the kNN leg can return it; it
    exists so that the engine's external versioning keeps refusing older upserts of a deleted
    product for as long as the tombstone stays (``hybrid-search purge-deletes`` removes old ones).
    """
    return {
        "product_id": event.product_id,
        "deleted": True,
        "event_version": event.version,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
