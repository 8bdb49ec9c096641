"""A catalogue file (``products.csv``: product_id, title, category, brand, image) as upsert events."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from acebert.data import DataError, load_catalog


def catalog_events(directory: str | Path, image_root: str | Path | None = None, version: int = 1,
                   limit: int | None = None) -> list[dict[str, Any]]:
    """One upsert event per catalogue row, all at ``version``, image paths relative to ``image_root``.

    ``image_root`` is the directory the workers know as ``PRODUCT_IMAGE_ROOT``; it defaults to the
    catalogue directory, whose paths ``products.csv`` already holds.

    Why relative: a worker resolves an event's image against its own image root, the search page
    serves a hit's stored image path from under the API's, and ``reembed`` reads it again from
    under its own. A path relative to the root means the same file wherever that root is mounted
    (another machine, a container's ``/app/data/...``), and a hit does not show where the producer
    kept the catalogue. A photo outside the root is refused here, before anything is queued:
    every one of its events would otherwise be parked by the workers.
    """
    frame = load_catalog(directory)
    if limit is not None:
        frame = frame.head(limit)
    root = Path(image_root if image_root is not None else directory).resolve()
    events = []
    for row in frame.itertuples(index=False):
        event: dict[str, Any] = {
            "type": "upsert",
            "product_id": str(row.product_id),
            "version": version,
            "title": row.title,
        }
        for name in ("category", "brand"):  # optional columns; the brand one feeds the searcher's brand rule
            if getattr(row, name, ""):
                event[name] = getattr(row, name)
        if row.image:
            event["image"] = _relative_to(Path(row.image), root, directory)
        events.append(event)
    return events


def _relative_to(image: Path, root: Path, directory: str | Path) -> str:
    """``image`` (absolute) as a path under ``root``; the error says which setting to change.

    The directories on the way are resolved as the root is (a catalogue reached through a
    symlinked directory is still under it); the file itself is not: a worker follows a link and
    refuses one that leaves its root, and says so in the event's dead letter.
    """
    located = image.parent.resolve() / image.name
    if not located.is_relative_to(root):
        raise DataError(
            f"photo {str(image)!r} of catalogue {str(directory)!r} is outside the image root {str(root)!r}: "
            "set PRODUCT_IMAGE_ROOT to the catalogue directory (or a directory above it), here and for the "
            "workers and the API")
    return located.relative_to(root).as_posix()
