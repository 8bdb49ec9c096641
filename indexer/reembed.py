"""Move reads and writes to another index version while events keep arriving: re-embed, rollback.

Vectors of two models do not share a space, so a new model needs a new index version, filled
while the old one serves. A switch to a target version:

1. moves the write alias to the target. Workers follow it within ``ALIAS_TTL_S`` and encode with
   the target's model (:mod:`indexer.models`). The switch waits that long, then refreshes the
   source, so every write the source will get is visible to the next step.
2. backfills the target from a point in time of the source. A document the target lacks at its
   version is re-encoded by the target's model and written at its own event version, so a
   backfilled copy never replaces a newer live event, and a delete carries over as its tombstone.
   A document the target already holds at its version, with its model, is skipped, so a resumed
   switch does only what is left.
3. repairs: a batch that chose its encoder just before the write alias moved lands in the target
   with the old model's vectors. Such documents are re-encoded at their own version until none
   is left.
4. moves the read alias to the target in one atomic update. Searches follow within
   ``ALIAS_TTL_S``; until then they search the source with the source's model, so no search fails
   or comes back empty. The source stays, for ``rollback``.

A crash between steps 1 and 4 leaves the read alias on the source and the write alias on the
target: :func:`reembed` then resumes that switch, and :func:`rollback` abandons it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from engines import SearchEngine
from es_mappings import VECTOR_FIELD, IndexLayout, IndexNames
from indexer.indices import add_missing_fields, create_version, current_versions, next_version
from indexer.models import ALIAS_TTL_S, IndexModels, model_meta
from indexer.pipeline import Status, index_events

log = logging.getLogger(__name__)
PAGE = 500
KEEP_ALIVE = "5m"
MAX_REPAIR_PASSES = 20
_STORED = {"_source": {"excludes": [VECTOR_FIELD]}, "version": True}


@dataclass(frozen=True)
class SwitchReport:
    source: str
    target: str
    backfilled: int  # documents written into the target from the source
    skipped: int  # documents the target already held at their version and model
    repaired: int  # live writes re-encoded because they carried the source's model


def reembed(
    engine: SearchEngine, names: IndexNames, models: IndexModels, spec: str, image_root: Path,
    layout: IndexLayout = IndexLayout(), batch_size: int = 128, settle_s: float = ALIAS_TTL_S,
) -> SwitchReport:
    """Encode every product with the model ``spec`` into a new index version and switch to it;
    resume instead when an earlier switch was interrupted."""
    read, write = _aliased(engine, names)
    if read != write:
        log.warning("resuming the unfinished switch from %s to %s", read, write)
        return switch_to(engine, names, models, write, image_root, batch_size, settle_s)
    encoder = models.encoder(spec)
    target = create_version(engine, names, next_version(engine, names), encoder.dimension, layout,
                            model_meta(spec, encoder.model_version))
    return switch_to(engine, names, models, target, image_root, batch_size, settle_s)


def rollback(
    engine: SearchEngine, names: IndexNames, models: IndexModels, image_root: Path,
    batch_size: int = 128, settle_s: float = ALIAS_TTL_S,
) -> SwitchReport:
    """Switch back to the previous index version, bringing it up to date with the events the
    current one received (each encoded by the previous version's own model); abandon an
    interrupted switch instead, if there is one."""
    read, write = _aliased(engine, names)
    target = read if read != write else previous_version(engine, names, read)
    return switch_to(engine, names, models, target, image_root, batch_size, settle_s)


def previous_version(engine: SearchEngine, names: IndexNames, index: str) -> str:
    """The newest version of this prefix older than ``index``."""
    version = names.version_of(index)
    older = [i for i in engine.indices(f"{names.prefix}-v*") if names.version_of(i) < version]
    if not older:
        raise RuntimeError(f"no index version older than {index} is left to roll back to")
    return max(older, key=names.version_of)


def switch_to(
    engine: SearchEngine, names: IndexNames, models: IndexModels, target: str, image_root: Path,
    batch_size: int = 128, settle_s: float = ALIAS_TTL_S,
) -> SwitchReport:
    """Move writes, then reads, to ``target`` without losing or resurrecting an event (see the module)."""
    read, write = _aliased(engine, names)
    source = read if read != target else write
    if source == target:
        return SwitchReport(source, target, 0, 0, 0)
    add_missing_fields(engine, target)  # a rollback's target may predate a field
    if write != target:
        engine.update_aliases([
            {"remove": {"index": write, "alias": names.write_alias}},
            {"add": {"index": target, "alias": names.write_alias, "is_write_index": True}},
        ])
        log.info("writes now go to %s", target)
    time.sleep(settle_s)
    engine.refresh(source)

    encoder = models.encoder_of(target)

    def write_events(events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), batch_size):
            report = index_events(events[start:start + batch_size], engine=engine, encoder=encoder, index=target,
                                  image_root=image_root, version_type="external_gte")
            failed = report.with_status(Status.REJECTED, Status.RETRY)
            if failed:
                raise RuntimeError(f"switch to {target} stopped: {len(failed)} documents failed, first: "
                                   f"{failed[0].error}. Fix the cause and run the command again: it resumes.")

    backfilled, skipped = _backfill(engine, source, target, encoder.model_version, write_events)
    repaired = _repair(engine, target, encoder.model_version, write_events)
    engine.refresh(target)
    if read != target:
        engine.update_aliases([
            {"remove": {"index": read, "alias": names.read_alias}},
            {"add": {"index": target, "alias": names.read_alias}},
        ])
    log.info("switched %s -> %s: %d backfilled, %d already there, %d repaired", source, target, backfilled,
             skipped, repaired)
    return SwitchReport(source, target, backfilled, skipped, repaired)


def _aliased(engine: SearchEngine, names: IndexNames) -> tuple[str, str]:
    read, write = current_versions(engine, names)
    if read is None or write is None:
        raise RuntimeError(f"no index behind aliases {names.read_alias!r}/{names.write_alias!r} yet; "
                           "run `hybrid-search init` first")
    return read, write


def _backfill(
    engine: SearchEngine, source: str, target: str, model_version: str,
    write_events: Callable[[list[dict[str, Any]]], None],
) -> tuple[int, int]:
    """Copy what the target lacks from a point in time of the source; (written, skipped)."""
    pit = engine.open_point_in_time(source, KEEP_ALIVE)
    body: dict[str, Any] = {"size": PAGE, "sort": [{"product_id": "asc"}], "query": {"match_all": {}}, **_STORED}
    written = skipped = 0
    progress = tqdm(total=engine.count(source), desc=f"{source} -> {target}", unit="product")
    try:
        while True:
            answer = engine.search_point_in_time(pit, KEEP_ALIVE, body)
            pit = answer.get("pit_id", pit)
            hits = answer["hits"]["hits"]
            if not hits:
                return written, skipped
            held = engine.mget(target, [hit["_id"] for hit in hits], [VECTOR_FIELD])["docs"]
            todo = [hit for hit, doc in zip(hits, held) if _lacks(doc, hit, model_version)]
            write_events([_as_event(hit) for hit in todo])
            written, skipped = written + len(todo), skipped + len(hits) - len(todo)
            progress.update(len(hits))
            body["search_after"] = hits[-1]["sort"]
    finally:
        progress.close()
        engine.close_point_in_time(pit)


def _lacks(held: dict[str, Any], hit: dict[str, Any], model_version: str) -> bool:
    """Whether the target's copy ``held`` of the source document ``hit`` must be (re)written."""
    if not held.get("found"):
        return True
    if held["_version"] != hit["_version"]:
        return held["_version"] < hit["_version"]
    source = held["_source"]
    return not source.get("deleted") and source.get("model_version") != model_version


def _repair(
    engine: SearchEngine, target: str, model_version: str, write_events: Callable[[list[dict[str, Any]]], None]
) -> int:
    """Re-encode the target's products that another model encoded, until none is left."""
    query = {"bool": {"must_not": [{"term": {"model_version": model_version}}, {"term": {"deleted": True}}]}}
    repaired = 0
    for _ in range(MAX_REPAIR_PASSES):
        engine.refresh(target)
        hits = engine.search(target, {"size": PAGE, "query": query, **_STORED})["hits"]["hits"]
        if not hits:
            return repaired
        write_events([_as_event(hit) for hit in hits])
        repaired += len(hits)
    raise RuntimeError(f"{target} still holds products of another model after {MAX_REPAIR_PASSES} passes; "
                       "are workers running with an encoder that cannot follow the index? Run the command again.")


def _as_event(hit: dict[str, Any]) -> dict[str, Any]:
    """A stored document back into the event that produced it (same version): a tombstone into
    its delete, so that deletes carry over to the new version."""
    source = hit["_source"]
    if source.get("deleted"):
        return {"type": "delete", "product_id": source["product_id"], "version": int(source["event_version"])}
    keys = ("product_id", "title", "description", "category", "brand", "attributes", "price", "image")
    event = {key: source[key] for key in keys if source.get(key) not in (None, {}, "")}
    return {"type": "upsert", "version": int(source["event_version"]), **event}
