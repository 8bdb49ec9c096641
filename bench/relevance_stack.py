"""The engine half of the relevance benchmark: start the services, fill the indices through workers.

Every benchmark index is filled the way production fills one: catalogue rows become product
events, the producer queues them in Redis, real Celery workers encode and bulk-write them. The
benchmark only prepares the empty index (so it can choose the analyzer) and waits.

An index that already holds this catalogue, encoded by this model with this analyzer, is
reused (``--reindex`` forces a rebuild), because ingestion dominates the run time and the
engines keep their data between runs under the cache directory.
"""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from tqdm import tqdm

from devstack import Service, start_elasticsearch, start_opensearch, start_redis
from devstack.worker import WorkerProcess, start_worker
from engines import SearchEngine
from es_mappings import IndexNames, index_body
from settings import Settings
from workers.queue import EventQueue

STARTERS: dict[str, Callable[..., Service]] = {
    "opensearch": start_opensearch,
    "elasticsearch": start_elasticsearch,
}
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


@contextmanager
def running_services(engines: Sequence[str], run_root: Path) -> Iterator[dict[str, Service]]:
    """Redis and the named engines on free ports, data kept under ``run_root``; all stopped on exit."""
    started: dict[str, Service] = {}
    run_root.mkdir(parents=True, exist_ok=True)
    run_root.chmod(0o755)
    try:
        started["redis"] = start_redis(run_root / "redis", port=free_port())
        for kind in engines:
            service = STARTERS[kind](run_root / kind, free_port(), free_port(), heap="2g")
            print(f"{kind} up at {service.url} in {service.started_in_s:.0f}s", flush=True)
            started[kind] = service
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def analyzer_for(engine: SearchEngine, spec: IndexSpec) -> dict[str, Any]:
    """The engines' own default (``standard``), or the analyzer the project picks for this node."""
    return {"type": "standard"} if spec.standard_analyzer else engine.text_analyzer()


def spec_events(spec: IndexSpec, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The catalogue events as this index receives them (without images for a title-only index)."""
    if spec.with_images:
        return [dict(event) for event in events]
    return [{key: value for key, value in event.items() if key != "image"} for event in events]


def _settings_analyzer(engine: SearchEngine, alias: str) -> dict[str, str]:
    answer = engine.request("GET", f"/{alias}/_settings")
    settings = next(iter(answer.values()))["settings"]["index"]
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


def recreate_index(engine: SearchEngine, names: IndexNames, dimension: int, analyzer: Mapping[str, Any]) -> str:
    """Drop every version of this prefix, then create version 1 behind both aliases.

    The worker's own ``ensure_index`` then finds the write alias and writes into this index, so
    the analyzer is the benchmark's choice while everything else is the production path.
    """
    existing = engine.request("GET", f"/{names.prefix}-v*", params={"allow_no_indices": "true"})
    for index in existing:
        engine.delete_index(index)
    index = names.index(1)
    body = index_body(vector_mapping=engine.vector_mapping(dimension), text_analyzer=analyzer,
                      extra_settings=engine.index_settings())
    engine.create_index(index, body)
    engine.update_aliases([
        {"add": {"index": index, "alias": names.read_alias}},
        {"add": {"index": index, "alias": names.write_alias, "is_write_index": True}},
    ])
    return index


def wait_drained(queue: EventQueue, worker: WorkerProcess, total: int, label: str) -> tuple[float, int]:
    """Block until the queue and every in-flight batch are empty, with a progress bar.

    Returns when the first products were seen done (``perf_counter`` time) and how many: the
    worker's pool processes load their model only after the worker reports ready, so the
    steady ingestion rate is measured from that moment on.
    """
    first: tuple[float, int] | None = None
    with tqdm(total=total, desc=f"ingest {label}", unit="product") as progress:
        while True:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited; see {worker.log}")
            left = queue.pending() + queue.in_flight()
            progress.update(total - left - progress.n)
            if first is None and progress.n:
                first = (time.perf_counter(), progress.n)
            if left == 0:
                return first or (time.perf_counter(), total)
            time.sleep(TASK_POLL_S)


def force_merge(engine: SearchEngine, index: str) -> float:
    """Merge to one segment and wait; returns the seconds it took.

    With one segment the HNSW graph, and so every kNN answer, is the same on every call: the
    background merges that follow a bulk load would otherwise change approximate results
    between the dev and test passes. The merge runs as a task, polled, because it can outlast
    the client's request timeout.
    """
    started = time.perf_counter()
    answer = engine.request("POST", f"/{index}/_forcemerge",
                            params={"max_num_segments": 1, "wait_for_completion": "false"})
    task = answer["task"]
    while not engine.request("GET", f"/_tasks/{task}").get("completed"):
        time.sleep(TASK_POLL_S)
    engine.refresh(index)
    return time.perf_counter() - started


def ingest(
    engine: SearchEngine,
    redis_url: str,
    spec: IndexSpec,
    events: Sequence[Mapping[str, Any]],
    dimension: int,
    model_version: str,
    log_dir: Path,
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
    settings = Settings(
        engine=engine.kind, engine_url=engine.url, redis_url=redis_url,
        index_prefix=spec.names.prefix, encoder=spec.encoder, batch_size=BATCH_SIZE,
        queue_prefix=f"bench-{engine.kind}-{spec.name}",
    )
    from workers.app import app
    from workers.producer import enqueue

    app.conf.broker_url = settings.redis_url  # this process is the producer
    queue = EventQueue.from_url(settings.redis_url, settings.queue_prefix)
    label = f"{engine.kind}/{spec.name}"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = start_worker({**settings.to_env(), "ACEBERT_TORCH_THREADS": "1"}, label.replace("/", "-"),
                          log_dir / f"worker-{engine.kind}-{spec.name}.log", concurrency=WORKER_CONCURRENCY)
    try:
        started = time.perf_counter()
        result = enqueue(events, queue, settings.batch_size)
        if result.parked:
            raise RuntimeError(f"{len(result.parked)} catalogue events were invalid: {result.parked[0][1]}")
        first_at, first_done = wait_drained(queue, worker, len(events), label)
        engine.refresh(alias)
        finished = time.perf_counter()
    finally:
        worker.stop()
    dead = queue.dead_letters()
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
