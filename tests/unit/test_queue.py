"""The event queue's leases and sweep on a real Redis: nothing stranded, a poison event parked."""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

import workers.queue as queue_module
from devstack import free_port, start_redis
from workers.queue import MAX_CRASHES, EventQueue

LEASE_S = 0.3  # short leases, so a "dead" worker's batch expires within the test


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    service = start_redis(Path(tempfile.mkdtemp(prefix="acebert-queue-")), port=free_port())
    yield service.url
    service.stop()


@pytest.fixture
def queue(redis_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> EventQueue:
    monkeypatch.setattr(queue_module, "LEASE_S", LEASE_S)
    return EventQueue.from_url(redis_url, prefix=f"t-{request.node.name}")


def events(n: int) -> list[dict]:
    return [{"product_id": f"p{i}", "version": 1, "title": f"t{i}"} for i in range(n)]


def expire() -> None:
    time.sleep(LEASE_S * 1.5)


def test_a_leased_batch_is_not_swept(queue: EventQueue):
    queue.push(events(3))
    assert len(queue.claim("task-a", 10)) == 3
    report = queue.sweep()
    assert report.returned == 0 and queue.in_flight() == 3


def test_a_dead_workers_batch_comes_back_one_event_at_a_time(queue: EventQueue):
    queue.push(events(5))
    assert len(queue.claim("dead", 3)) == 3  # the worker dies here: no renewal, no finish
    expire()
    report = queue.sweep()
    assert report.returned == 3 and report.parked == []
    assert queue.in_flight() == 0 and queue.pending() == 5  # 2 never claimed + 3 suspects
    assert queue.claim("next", 10) == [events(5)[0]]  # a suspect is claimed alone
    queue.finish("next")
    assert queue.sweep().returned == 0  # a finished batch leaves nothing to sweep


def test_an_event_that_keeps_killing_its_worker_is_parked(queue: EventQueue):
    poison, *rest = events(4)
    queue.push([poison, *rest])
    indexed, parked = [], []
    for attempt in range(20):  # a worker loop in which the poison event kills the process
        batch = queue.claim(f"task-{attempt}", 10)
        if not batch:
            break
        if poison in batch:
            expire()  # the process died holding the batch
            parked += queue.sweep().parked
        else:
            indexed += batch
            queue.finish(f"task-{attempt}")
    assert sorted(e["product_id"] for e in indexed) == sorted(e["product_id"] for e in rest)
    assert len(parked) == 1 and queue.pending() == 0 and queue.in_flight() == 0
    letter = queue.dead_letter(parked[0])
    assert letter.event == poison and letter.stage == "worker" and letter.attempts == MAX_CRASHES
    assert "worker process died" in letter.error


def test_finishing_forgets_crashes(queue: EventQueue):
    queue.push(events(1))
    queue.claim("a", 10)
    expire()
    queue.sweep()
    assert queue.redis.hlen(queue.crashes_key) == 1
    queue.claim("b", 10)
    queue.finish("b")
    assert queue.redis.hlen(queue.crashes_key) == 0


def test_a_renewed_lease_outlives_its_duration(queue: EventQueue):
    queue.push(events(2))
    queue.claim("busy", 10)
    with queue.leased("busy", every_s=LEASE_S / 4):
        expire()
        expire()
        assert queue.sweep().returned == 0
    queue.finish("busy")


def test_a_batch_held_for_its_retry_is_not_swept(queue: EventQueue):
    queue.push(events(2))
    queue.claim("retrying", 10)
    queue.hold("retrying", LEASE_S * 4)
    expire()
    assert queue.sweep().returned == 0
    time.sleep(LEASE_S * 3)
    assert queue.sweep().returned == 2  # the retry never came: its worker died


def test_wait_drained_names_what_is_left(queue: EventQueue):
    queue.push(events(2))
    with pytest.raises(TimeoutError, match="2 events still pending"):
        queue.wait_drained(timeout_s=0.1, poll_s=0.05)
    seen: list[int] = []
    queue.claim("w", 10)
    queue.finish("w")
    queue.wait_drained(timeout_s=1, progress=seen.append)
    assert seen == [0]


def test_drains_needed_counts_a_task_per_suspect_and_per_batch(queue: EventQueue):
    queue.push(events(5))
    queue.claim("dead", 2)
    expire()
    queue.sweep()  # 2 suspects back, 3 still pending
    assert queue.drains_needed(batch_size=2) == 2 + math.ceil(3 / 2)
