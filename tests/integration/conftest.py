"""Real OpenSearch, Elasticsearch, Redis and Celery worker processes, started once per run.

Every engine-facing test takes the ``stack`` fixture, parametrised over both engines, so the
same test runs against OpenSearch and Elasticsearch. Each engine gets its own worker process
(its own Celery queue and Redis key prefix) that indexes the shipped sample catalogue once;
tests then add their own products with ids that cannot collide. The services come from
``devstack.local_stack``, the same context manager the demo and the benchmarks use.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from devstack import LocalStack, WorkerProcess, local_stack
from engines import ENGINE_KINDS
from indexer.catalog import catalog_events
from system import System

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
INDEX_PREFIX = "itest"


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
    yield path
    if request.session.testsfailed:
        print(f"\nengine, Redis and worker logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def services(stack_dir: Path) -> Iterator[LocalStack]:
    """Both engines (started side by side) and Redis, for the whole run; workers stop with it."""
    with local_stack(stack_dir, engines=ENGINE_KINDS, parallel=True) as started:
        yield started


@dataclass
class Stack:
    """One engine with its worker, as the tests see it."""

    kind: str
    system: System
    worker: WorkerProcess

    @property
    def engine(self):
        return self.system.engine

    @property
    def queue(self):
        return self.system.queue

    def enqueue(self, events: list[dict[str, Any]]):
        return self.system.producer.enqueue(events)

    def drained(self, timeout_s: float = 120) -> None:
        self.queue.wait_drained(timeout_s, poll_s=0.25, check=self.worker.check_alive)
        self.engine.refresh(self.system.names.read_alias)

    def doc(self, product_id: str) -> dict[str, Any] | None:
        return self.engine.get(self.system.names.read_alias, product_id)


@pytest.fixture(scope="session")
def _stacks(services: LocalStack) -> Iterator[dict[str, Stack]]:
    stacks: dict[str, Stack] = {}
    yield stacks
    for stack in stacks.values():
        stack.system.close()


@pytest.fixture(scope="session", params=ENGINE_KINDS)
def stack(request: pytest.FixtureRequest, services: LocalStack, _stacks: dict[str, Stack]) -> Stack:
    """An engine with a running worker and the sample catalogue indexed through it."""
    kind = request.param
    if kind in _stacks:
        return _stacks[kind]
    settings = services.settings(kind, index_prefix=INDEX_PREFIX, image_root=SAMPLE, batch_size=32,
                                 queue_prefix=f"itest-{kind}")
    worker = services.start_worker(settings, kind)
    stack = Stack(kind, System(settings), worker)
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
