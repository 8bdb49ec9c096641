"""Index versions and aliases: create a version, the first one and its aliases, purge tombstones.

Writes always go to the write alias and searches to the read alias, so a new version can be
filled while the old one serves (:mod:`indexer.reembed` moves between versions).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from engines import SearchEngine
from es_mappings import PRODUCT_FIELDS, VECTORS_META, IndexLayout, IndexNames, index_body

log = logging.getLogger(__name__)


def create_version(
    engine: SearchEngine, names: IndexNames, version: int, dimension: int, layout: IndexLayout,
    meta: Mapping[str, Any] | None = None, exist_ok: bool = False, text_analyzer: Mapping[str, Any] | None = None,
) -> str:
    """Create ``<prefix>-v<version>`` with this engine's vector mapping and analyzer, laid out by
    ``layout``, recording ``meta`` (its model, :func:`indexer.models.model_meta`) and how it
    stores its vectors, which the searcher reads to rescore quantised ones.

    ``text_analyzer`` replaces the engine's own (:meth:`SearchEngine.text_analyzer`) only where a
    benchmark compares analyzers. An existing version is an error (two re-embeds at once) unless
    ``exist_ok``."""
    index = names.index(version)
    body = index_body(
        vector_mapping=engine.vector_mapping(dimension, quantized=layout.quantized, graph=layout.graph),
        text_analyzer=engine.text_analyzer() if text_analyzer is None else text_analyzer,
        extra_settings=engine.index_settings(),
        layout=layout,
        meta={**(meta or {}), VECTORS_META: layout.vectors},
    )
    if engine.create_index(index, body):
        log.info("created index %s (dimension %d, %s)", index, dimension, layout)
    elif not exist_ok:
        raise RuntimeError(f"index {index} exists already: is another re-embed running?")
    return index


def current_versions(engine: SearchEngine, names: IndexNames) -> tuple[str | None, str | None]:
    """The concrete indices behind (read alias, write alias), or ``None`` where unset."""
    read = engine.indices_of_alias(names.read_alias)
    write = engine.indices_of_alias(names.write_alias)
    return (read[0] if read else None, write[0] if write else None)


def ensure_index(
    engine: SearchEngine, names: IndexNames, dimension: int, layout: IndexLayout = IndexLayout(),
    meta: Mapping[str, Any] | None = None,
) -> str:
    """The index behind the write alias, creating version 1 (with ``meta``) and both aliases on first
    use, or bringing an existing one's mapping up to date (:func:`add_missing_fields`).

    Workers that start together may all get here first: creating an existing index and adding an
    alias it already has both succeed, so each of them ends with the same index and aliases.
    """
    _, write = current_versions(engine, names)
    if write:
        add_missing_fields(engine, write)
        return write
    index = create_version(engine, names, 1, dimension, layout, meta, exist_ok=True)
    serve_first_version(engine, names, index)
    return index


def add_missing_fields(engine: SearchEngine, index: str) -> list[str]:
    """Add the product fields that ``index``'s mapping lacks; the names added, sorted.

    Every index version has a strict mapping, so one made by an earlier release refuses a document
    with a field that release did not know (such as ``encoded_input``). Workers call this when they
    start and a switch calls it before writing to its target: an index keeps taking writes across
    an upgrade and a rollback. Adding a field is idempotent, and two processes may do it at once.
    """
    held = engine.mapping(index).get("properties", {})
    missing = {field.name: dict(field.mapping) for field in PRODUCT_FIELDS if field.name not in held}
    if missing:
        engine.add_fields(index, missing)
        log.info("added %s to the mapping of %s", ", ".join(sorted(missing)), index)
    return sorted(missing)


def serve_first_version(engine: SearchEngine, names: IndexNames, index: str) -> None:
    """Point both aliases at ``index``, the first version: reads and writes go to it from now on."""
    engine.update_aliases(
        [
            {"add": {"index": index, "alias": names.read_alias}},
            {"add": {"index": index, "alias": names.write_alias, "is_write_index": True}},
        ]
    )


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
