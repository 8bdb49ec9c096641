"""Real OpenSearch, Elasticsearch, Redis and Celery worker processes, started once per run.

Every engine-facing test takes the ``stack`` fixture, parametrised over both engines, so the
same test runs against OpenSearch and Elasticsearch. Each engine gets its own worker process
(its own Celery queue and Redis key prefix) that indexes the shipped sample catalogue once;
tests then add their own products with ids that cannot collide.
"""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from devstack import Service, start_elasticsearch, start_opensearch, start_redis
from devstack.worker import WorkerProcess, start_worker
from indexer.catalog import catalog_events
from service.runtime import Runtime
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
ENGINES = ("opensearch", "elasticsearch")
INDEX_PREFIX = "itest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout_s: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(scope="session")
def stack_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    # Not under pytest's tmp dir: that is private to root, and the engines run as their own user.
    path = Path(tempfile.mkdtemp(prefix="acebert-itest-"))
    path.chmod(0o755)
    yield path
    if request.session.testsfailed:
        print(f"\nengine, Redis and worker logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def services(stack_dir: Path) -> Iterator[dict[str, Service]]:
    """Both engines (started side by side) and Redis, for the whole run."""
    started: dict[str, Service] = {}
    try:
        started["redis"] = start_redis(stack_dir / "redis", port=free_port())
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                "opensearch": pool.submit(start_opensearch, stack_dir / "opensearch", free_port(), free_port()),
                "elasticsearch": pool.submit(start_elasticsearch, stack_dir / "elasticsearch", free_port(), free_port()),
            }
            for name, future in futures.items():
                started[name] = future.result()
        for name, service in started.items():
            print(f"\n{name} ready at {service.url} in {service.started_in_s:.1f}s")
        yield started
    finally:
        for service in started.values():
            service.stop()


@dataclass
class Stack:
    """One engine with its worker, as the tests see it."""

    kind: str
    runtime: Runtime
    worker: WorkerProcess

    @property
    def engine(self):
        return self.runtime.engine

    @property
    def queue(self):
        return self.runtime.queue

    def enqueue(self, events: list[dict[str, Any]]):
        from workers.producer import enqueue

        return enqueue(events, self.queue, self.runtime.settings.batch_size)

    def drained(self, timeout_s: float = 120) -> None:
        wait_for(lambda: self.queue.pending() == 0 and self.queue.in_flight() == 0, timeout_s,
                 f"{self.kind} worker to drain the queue (log: {self.worker.log})")
        self.engine.refresh(self.runtime.names.read_alias)

    def doc(self, product_id: str) -> dict[str, Any] | None:
        return self.engine.get(self.runtime.names.read_alias, product_id)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**settings.to_env(), "ACEBERT_TORCH_THREADS": "1", **extra}


@pytest.fixture(scope="session")
def _stacks(services: dict[str, Service], stack_dir: Path) -> Iterator[dict[str, Stack]]:
    stacks: dict[str, Stack] = {}
    yield stacks
    for stack in stacks.values():
        stack.worker.stop()
        stack.runtime.engine.close()


@pytest.fixture(scope="session", params=ENGINES)
def stack(request: pytest.FixtureRequest, services: dict[str, Service], _stacks: dict[str, Stack],
          stack_dir: Path) -> Stack:
    """An engine with a running worker and the sample catalogue indexed through it."""
    kind = request.param
    if kind in _stacks:
        return _stacks[kind]
    settings = Settings(
        engine=kind, engine_url=services[kind].url, redis_url=services["redis"].url,
        index_prefix=INDEX_PREFIX, encoder="minilm", image_root=SAMPLE, batch_size=32,
        queue_prefix=f"itest-{kind}",
    )
    from workers.app import app

    app.conf.broker_url = settings.redis_url  # the producer side of this test process
    runtime = Runtime(settings)
    worker = start_worker(worker_env(settings), kind, stack_dir / f"worker-{kind}.log")
    stack = Stack(kind, runtime, worker)
    _stacks[kind] = stack

    events = catalog_events(SAMPLE)
    started = time.perf_counter()
    result = stack.enqueue(events)
    assert result.queued == len(events) and not result.parked
    stack.drained(timeout_s=600)
    seconds = time.perf_counter() - started
    print(f"\n{kind}: {len(events)} sample events indexed through the worker in {seconds:.1f}s "
          f"({len(events) / seconds:.0f} events/s)")
    return stack
