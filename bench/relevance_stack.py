"""The engine half of the relevance benchmark: start the services, fill the indices through workers.

Every benchmark index is filled the way production fills one: catalogue rows become product
events, the producer queues them in Redis, real Celery workers encode and bulk-write them. The
benchmark only prepares the empty index (so it can choose the analyzer) and waits.

An index that already holds this catalogue, encoded by this model with this analyzer, is
reused (``--reindex`` forces a rebuild), because ingestion dominates the run time and the
engines keep their data between runs under the cache directory.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from devstack import LocalStack
from engines import SearchEngine
from es_mappings import FLOAT_VECTORS, INT8_VECTORS, HnswGraph, IndexLayout, IndexNames
from indexer.indices import create_version, serve_first_version
from system import System

BATCH_SIZE = 64
WORKER_CONCURRENCY = 2
TASK_POLL_S = 1.0


@dataclass(frozen=True)
class IndexSpec:
    """One benchmark index: the encoder behind its vectors, whether events carry images, its analyzer.

    ``with_images=False`` is how "ACE-BERT (title only)" is built: the same checkpoint, fed
    events without an image, so the product tower sees the title alone.
    """

    name: str
    encoder: str
    with_images: bool = True
    standard_analyzer: bool = False

    @property
    def names(self) -> IndexNames:
        return IndexNames(f"bench-{self.name}")


@dataclass(frozen=True)
class Ingestion:
    """What filling (or reusing) one index took."""

    engine: str
    index: str
    documents: int
    analyzer: dict[str, Any]
    model_version: str
    reused: bool
    seconds: float | None = None            # first event queued -> all searchable
    warmup_s: float | None = None           # first event queued -> first batch indexed
    steady_docs_per_s: float | None = None  # products/s once the pool processes had their model
    worker_start_s: float | None = None
    force_merge_s: float | None = None


def analyzer_for(engine: SearchEngine, spec: IndexSpec) -> dict[str, Any]:
    """The engines' own default (``standard``), or the analyzer the project picks for this node."""
    return {"type": "standard"} if spec.standard_analyzer else engine.text_analyzer()


def spec_events(spec: IndexSpec, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The catalogue events as this index receives them (without images for a title-only index)."""
    if spec.with_images:
        return [dict(event) for event in events]
    return [{key: value for key, value in event.items() if key != "image"} for event in events]


def _settings_analyzer(engine: SearchEngine, alias: str) -> dict[str, str]:
    settings = engine.settings_of(alias)
    return settings.get("analysis", {}).get("analyzer", {}).get("product_text", {})


def is_current(engine: SearchEngine, spec: IndexSpec, events: Sequence[Mapping[str, Any]],
               model_version: str, analyzer: Mapping[str, Any]) -> bool:
    """Whether the index already holds exactly these products, from this model, with this analyzer."""
    alias = spec.names.read_alias
    if not engine.indices_of_alias(alias):
        return False
    expected = len(events)
    with_image = sum("image" in event for event in events)
    ids = [event["product_id"] for event in events]
    return (
        engine.count(alias) == expected
        and engine.count(alias, {"terms": {"product_id": ids}}) == expected
        and engine.count(alias, {"term": {"model_version": model_version}}) == expected
        and engine.count(alias, {"term": {"has_image": True}}) == with_image
        and _settings_analyzer(engine, alias) == {key: str(value) for key, value in analyzer.items()}
    )


def recreate_index(
    engine: SearchEngine, names: IndexNames, dimension: int, analyzer: Mapping[str, Any], quantized: bool = False,
    graph: HnswGraph = HnswGraph(),
) -> str:
    """Drop every version of this prefix, then create version 1 behind both aliases.

    The worker's own ``ensure_index`` then finds the write alias and writes into this index, so
    the analyzer is the benchmark's choice while everything else is the production path.
    """
    for index in engine.indices(f"{names.prefix}-v*"):
        engine.delete_index(index)
    layout = IndexLayout(vectors=INT8_VECTORS if quantized else FLOAT_VECTORS, graph=graph)
    index = create_version(engine, names, 1, dimension, layout, text_analyzer=analyzer)
    serve_first_version(engine, names, index)
    return index


class DrainProgress:
    """A progress bar over the queue, and when the first products were seen done.

    The worker's pool processes load their model only after the worker reports ready, so the
    steady ingestion rate is measured from the first finished batch on.
    """

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.bar = tqdm(total=total, desc=f"ingest {label}", unit="product")
        self.first: tuple[float, int] | None = None  # (perf_counter time, products done)

    def __call__(self, left: int) -> None:
        self.bar.update(self.total - left - self.bar.n)
        if self.first is None and self.bar.n:
            self.first = (time.perf_counter(), self.bar.n)

    def close(self) -> tuple[float, int]:
        self.bar.close()
        return self.first or (time.perf_counter(), self.total)


def force_merge(engine: SearchEngine, index: str) -> float:
    """Merge to one segment and wait; returns the seconds it took.

    With one segment the HNSW graph, and so every kNN answer, is the same on every call: the
    background merges that follow a bulk load would otherwise change approximate results
    between the dev and test passes. The merge runs as a task, polled, because it can outlast
    the client's request timeout.
    """
    started = time.perf_counter()
    engine.force_merge(index, poll_s=TASK_POLL_S)
    engine.refresh(index)
    return time.perf_counter() - started


def ingest(
    stack: LocalStack,
    engine: SearchEngine,
    spec: IndexSpec,
    events: Sequence[Mapping[str, Any]],
    dimension: int,
    model_version: str,
    image_root: Path,
    reindex: bool = False,
) -> Ingestion:
    """Fill ``spec``'s index on ``engine`` through a real Celery worker, unless it is already current."""
    events = spec_events(spec, events)
    analyzer = analyzer_for(engine, spec)
    alias = spec.names.read_alias
    if not reindex and is_current(engine, spec, events, model_version, analyzer):
        print(f"{engine.kind}: reusing {alias} ({len(events)} products, {model_version})", flush=True)
        return Ingestion(engine.kind, alias, len(events), analyzer, model_version, reused=True)

    index = recreate_index(engine, spec.names, dimension, analyzer)
    settings = stack.settings(engine.kind, index_prefix=spec.names.prefix, encoder=spec.encoder,
                              image_root=image_root, batch_size=BATCH_SIZE,
                              queue_prefix=f"bench-{engine.kind}-{spec.name}")
    system = System(settings)
    label = f"{engine.kind}/{spec.name}"
    worker = stack.start_worker(settings, label.replace("/", "-"), concurrency=WORKER_CONCURRENCY)
    progress = DrainProgress(len(events), label)
    try:
        started = time.perf_counter()
        result = system.producer.enqueue(events)
        if result.parked:
            raise RuntimeError(f"{len(result.parked)} catalogue events were invalid: {result.parked[0][1]}")
        system.queue.wait_drained(timeout_s=6 * 3600, poll_s=TASK_POLL_S, check=worker.check_alive,
                                  progress=progress)
        engine.refresh(alias)
        finished = time.perf_counter()
    finally:
        first_at, first_done = progress.close()
        stack.stop_worker(worker)
    dead = system.queue.dead_letters()
    if dead:
        raise RuntimeError(f"{len(dead)} products were parked while indexing {label}; first: {dead[0].error}")
    if not is_current(engine, spec, events, model_version, analyzer):
        raise RuntimeError(f"{alias} does not hold the {len(events)} products encoded by {model_version} after "
                           f"ingestion (did the checkpoint change during the run?); see {worker.log}")
    count = len(events)
    merge_s = force_merge(engine, index)
    steady = (count - first_done) / (finished - first_at) if finished > first_at else None
    ingestion = Ingestion(engine.kind, alias, count, analyzer, model_version, reused=False,
                          seconds=finished - started, warmup_s=first_at - started, steady_docs_per_s=steady,
                          worker_start_s=worker.started_in_s, force_merge_s=merge_s)
    print(f"{label}: {count} products in {ingestion.seconds:.0f}s ({ingestion.warmup_s:.0f}s until the first "
          f"batch), merged in {merge_s:.0f}s", flush=True)
    return ingestion
