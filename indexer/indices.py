"""Index versions and aliases: create the first version, and move to a new one without downtime.

Writes always go to the write alias and searches to the read alias. A re-embed (new model or new
mapping) first points the write alias at the new version, so live events land there, then
backfills it from the old version with each document's own event version (so a backfilled copy
never overwrites a newer live event), and finally moves the read alias in one atomic update.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

from engines import SearchEngine
from es_mappings import IndexLayout, IndexNames, index_body

log = logging.getLogger(__name__)


def create_version(
    engine: SearchEngine, names: IndexNames, version: int, dimension: int, layout: IndexLayout
) -> str:
    """Create ``<prefix>-v<version>`` with this engine's vector mapping and analyzer, laid out by ``layout``."""
    index = names.index(version)
    body = index_body(
        vector_mapping=engine.vector_mapping(dimension),
        text_analyzer=engine.text_analyzer(),
        extra_settings=engine.index_settings(),
        layout=layout,
    )
    engine.create_index(index, body)
    log.info("created index %s (dimension %d, %s)", index, dimension, layout)
    return index


def current_versions(engine: SearchEngine, names: IndexNames) -> tuple[str | None, str | None]:
    """The concrete indices behind (read alias, write alias), or ``None`` where unset."""
    read = engine.indices_of_alias(names.read_alias)
    write = engine.indices_of_alias(names.write_alias)
    return (read[0] if read else None, write[0] if write else None)


def ensure_index(
    engine: SearchEngine, names: IndexNames, dimension: int, layout: IndexLayout = IndexLayout()
) -> str:
    """The index behind the write alias, creating version 1 and both aliases on first use."""
    _, write = current_versions(engine, names)
    if write:
        return write
    index = create_version(engine, names, 1, dimension, layout)
    engine.update_aliases(
        [
            {"add": {"index": index, "alias": names.read_alias}},
            {"add": {"index": index, "alias": names.write_alias, "is_write_index": True}},
        ]
    )
    return index


def purge_tombstones(engine: SearchEngine, names: IndexNames, older_than: str) -> int:
    """Remove delete tombstones older than ``older_than`` (an engine date-math span: ``30d``, ``12h``).

    A stale upsert of a deleted product that arrives after its tombstone is purged would bring it
    back, so ``older_than`` must be longer than any event can be delayed or replayed late.
    """
    query = {"bool": {"filter": [{"term": {"deleted": True}}, {"range": {"updated_at": {"lt": f"now-{older_than}"}}}]}}
    return engine.delete_matching(names.read_alias, query)


def next_version(engine: SearchEngine, names: IndexNames) -> int:
    """One past the highest version of this prefix, so a new version never reuses a dropped one's name."""
    versions = [names.version_of(index) for index in engine.indices(f"{names.prefix}-v*")]
    return max(versions, default=0) + 1


def scan_documents(
    engine: SearchEngine, index: str, page_size: int = 500
) -> Iterator[dict[str, Any]]:
    """Every document of ``index`` with its ``_version``, paged with ``search_after`` on the id."""
    search_after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": page_size,
            "sort": [{"product_id": "asc"}],
            "version": True,
            "_source": {"excludes": ["vector"]},
            "query": {"match_all": {}},
        }
        if search_after is not None:
            body["search_after"] = search_after
        hits = engine.search(index, body)["hits"]["hits"]
        if not hits:
            return
        yield from hits
        search_after = hits[-1]["sort"]


def migrate(
    engine: SearchEngine,
    names: IndexNames,
    dimension: int,
    backfill: Callable[[str, Iterator[dict[str, Any]]], int],
    layout: IndexLayout = IndexLayout(),
) -> str:
    """Move both aliases to a new index version, backfilled from the current read index.

    ``backfill(new_index, old_hits)`` writes the old documents (re-encoded as needed) into the
    new index with external versions and returns how many it wrote.
    """
    old_read, old_write = current_versions(engine, names)
    if old_read is None or old_write is None:
        raise RuntimeError(f"no index behind aliases {names.read_alias!r}/{names.write_alias!r} yet")
    new_index = create_version(engine, names, next_version(engine, names), dimension, layout)
    engine.update_aliases(
        [
            {"remove": {"index": old_write, "alias": names.write_alias}},
            {"add": {"index": new_index, "alias": names.write_alias, "is_write_index": True}},
        ]
    )
    written = backfill(new_index, scan_documents(engine, old_read))
    engine.refresh(new_index)
    engine.update_aliases(
        [
            {"remove": {"index": old_read, "alias": names.read_alias}},
            {"add": {"index": new_index, "alias": names.read_alias}},
        ]
    )
    log.info("migrated %s -> %s (%d documents backfilled)", old_read, new_index, written)
    return new_index
