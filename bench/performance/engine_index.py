"""Engines for the benchmarks, and indices filled by bulk writes of precomputed vectors.

The query, ingestion-ceiling and scale benchmarks all need "these documents, with these
vectors, in a fresh index": the encoding cost is measured by the encoding benchmark, so here
only the engine's share is timed.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from bench.performance.common import bulk_actions
from bench.relevance_stack import force_merge, recreate_index
from devstack import LocalStack, local_stack
from engines import SearchEngine, connect
from es_mappings import HnswGraph, IndexNames


@contextmanager
def engine_stack(kind: str) -> Iterator[tuple[SearchEngine, LocalStack]]:
    """One engine and Redis (a local stack) in a private temporary directory; all stopped on exit."""
    run_root = Path(tempfile.mkdtemp(prefix=f"acebert-perf-{kind}-"))
    try:
        with local_stack(run_root, engines=(kind,), heap="2g") as stack:
            engine = connect(kind, stack.engines[kind].url)
            try:
                yield engine, stack
            finally:
                engine.close()
    finally:
        shutil.rmtree(run_root, ignore_errors=True)


@dataclass(frozen=True)
class BulkLoad:
    """What loading one index took, and what it holds."""

    index: str
    documents: int
    bulk_s: float  # first action sent -> all documents refreshed (searchable)
    merge_s: float | None

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.bulk_s


def bulk_load(
    engine: SearchEngine, prefix: str, docs: Iterable[Mapping[str, Any]], dimension: int, merge: bool = True,
    quantized: bool = False, graph: HnswGraph = HnswGraph(),
) -> BulkLoad:
    """A fresh index ``<prefix>-v1`` (behind alias ``prefix``) holding ``docs``, optionally force-merged.

    ``docs`` may be a generator: a million documents with their vectors as JSON-ready lists would
    not fit in memory at once, so they are streamed through the bulk helper.

    Merging to one segment makes kNN answers and latencies repeatable between runs (the same
    choice as the relevance benchmark); its time is reported apart from the bulk time.
    """
    names = IndexNames(prefix)
    index = recreate_index(engine, names, dimension, engine.text_analyzer(), quantized, graph)
    written, bulk_s = bulk_write(engine, index, docs)
    merge_s = force_merge(engine, index) if merge else None
    return BulkLoad(index, written, bulk_s, merge_s)


def bulk_write(engine: SearchEngine, index: str, docs: Iterable[Mapping[str, Any]]) -> tuple[int, float]:
    """``docs`` bulk-written into ``index`` at their versions, then refreshed: (documents, seconds)."""
    started = time.perf_counter()
    outcomes = engine.bulk(bulk_actions(docs, index))
    engine.refresh(index)
    seconds = time.perf_counter() - started
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} bulk writes failed; first: {failed[0].error}")
    return len(outcomes), seconds


def index_stats(engine: SearchEngine, index: str) -> dict[str, Any]:
    """Documents, store size on disk (bytes), segment count and bytes per segment file extension
    (``vec``: float vectors, ``veq``: quantised vectors, ``vex``: the HNSW graph) of ``index``'s primaries."""
    engine.flush(index)
    stats = engine.store_stats(index)
    files = {ext: part["size_in_bytes"] for ext, part in stats["segments"].get("file_sizes", {}).items()}
    return {"documents": stats["docs"]["count"], "store_bytes": stats["store"]["size_in_bytes"],
            "segments": stats["segments"]["count"], "file_bytes": files}
