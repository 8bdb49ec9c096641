"""Re-encode every product with the current encoder into a new index version, then swap.

Needed when the model changes: vectors of two models do not share a space, so an index must
hold one model's vectors only (each document records ``model_version``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from acebert.encoder import Encoder
from engines import SearchEngine
from es_mappings import IndexLayout, IndexNames
from indexer.indices import migrate
from indexer.pipeline import Status, index_events


def _as_event(hit: dict[str, Any]) -> dict[str, Any]:
    """A stored document back into the event that produced it (same version): a tombstone into
    its delete, so that deletes carry over to the new version."""
    source = hit["_source"]
    if source.get("deleted"):
        return {"type": "delete", "product_id": source["product_id"], "version": int(source["event_version"])}
    keys = ("product_id", "title", "description", "category", "brand", "attributes", "price", "image")
    event = {key: source[key] for key in keys if source.get(key) not in (None, {}, "")}
    return {"type": "upsert", "version": int(source["event_version"]), **event}


def reembed(
    engine: SearchEngine, names: IndexNames, encoder: Encoder, image_root: Path, batch_size: int = 128,
    layout: IndexLayout = IndexLayout(),
) -> str:
    def backfill(new_index: str, hits: Iterator[dict[str, Any]]) -> int:
        written, batch = 0, []
        progress = tqdm(desc=f"re-embedding into {new_index}", unit="product")
        for hit in hits:
            batch.append(_as_event(hit))
            if len(batch) == batch_size:
                written += _write(batch, new_index)
                progress.update(len(batch))
                batch = []
        if batch:
            written += _write(batch, new_index)
            progress.update(len(batch))
        progress.close()
        return written

    def _write(batch: list[dict[str, Any]], index: str) -> int:
        report = index_events(batch, engine=engine, encoder=encoder, index=index, image_root=image_root)
        failed = report.with_status(Status.REJECTED, Status.RETRY)
        if failed:
            raise RuntimeError(f"re-embed stopped: {len(failed)} documents failed, first: {failed[0].error}")
        return len(report.with_status(Status.INDEXED, Status.STALE))

    return migrate(engine, names, encoder.dimension, backfill, layout)
