"""The one task: drain a micro-batch of events from the queue into the index.

The task is registered on an app by :func:`register_drain`, with the parts it works with handed
in by the composition root (``system.System``), so this module reads no settings and builds
nothing itself.

Retries are declared on the task, for named exceptions (:data:`RETRYABLE`): an engine outage, a
Redis blip, or items the engine answered 429/5xx. Once they are spent, the events are parked
with the last error, so an outage ends in the dead-letter list, never in silence. Any other
exception is a bug or bad data that a retry will not fix: the batch is parked at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import redis
from celery import Celery, Task, bootsteps
from celery.signals import worker_process_init
from celery.utils.time import get_exponential_backoff_interval

from acebert.encoder import Encoder
from engines import EngineError, EngineUnavailable, SearchEngine
from indexer.pipeline import Status, index_events
from workers.app import DRAIN_TASK
from workers.queue import LEASE_S, EventQueue

log = logging.getLogger(__name__)

# Logged by each pool process once its model is loaded; devstack waits for it.
WARM_MARKER = "encoder loaded:"
BACKOFF_MAX_S = 30


class ItemsToRetry(Exception):
    """Some events of the batch got a transient answer (429/5xx) and stay in flight for a retry."""


RETRYABLE: tuple[type[Exception], ...] = (EngineUnavailable, redis.ConnectionError, redis.TimeoutError, ItemsToRetry)


@dataclass(frozen=True)
class DrainParts:
    """What a drain task writes with: built once per worker process by the composition root.

    Building them needs the engine (the write index is ensured), so a task builds them after it
    has claimed its batch, inside its error handling: an engine that is down at start-up ends in
    retries and then dead letters, like one that goes down later.
    """

    engine: SearchEngine  # the write index exists on it
    encoder: Callable[[], Encoder]  # the model of the index behind the write alias, asked per batch
    index: str  # the write alias
    image_root: Path


def register_drain(
    app: Celery, queue: Callable[[], EventQueue], parts: Callable[[], DrainParts], batch_size: int, max_retries: int
) -> Task:
    """Register the drain task on ``app``; ``queue()`` and ``parts()`` are called in the task, so
    lazily in each pool process."""

    @app.task(bind=True, name=DRAIN_TASK, autoretry_for=RETRYABLE, max_retries=max_retries,
              retry_backoff=1, retry_backoff_max=BACKOFF_MAX_S, retry_jitter=False)
    def drain(self: Task) -> dict[str, int]:
        """Index up to one batch of queued events; park what can never succeed.

        The batch is this task's in-flight list in Redis. A retry or a redelivery (worker
        killed) has the same task id and so finds the same list.
        """
        events = queue()
        task_id = self.request.id
        batch = events.claim(task_id, batch_size)
        if not batch:
            return {}
        attempts = self.request.retries + 1
        exhausted = self.request.retries >= self.max_retries
        try:
            with events.leased(task_id):
                p = parts()
                report = index_events(batch, engine=p.engine, encoder=p.encoder(), index=p.index,
                                      image_root=p.image_root)
        except RETRYABLE as exc:
            if not exhausted:
                log.warning("batch of %d failed, retrying: %s", len(batch), exc)
                _hold_for_retry(self, events, task_id)
                raise
            return _park_batch(events, task_id, batch, exc, attempts)
        except Exception as exc:  # a bug or data no retry will fix: park now, for an operator
            log.exception("batch of %d failed unexpectedly; parked", len(batch))
            return _park_batch(events, task_id, batch, exc, attempts)

        rejected = report.with_status(Status.REJECTED)
        events.park([(o.raw, o.error or "rejected") for o in rejected], stage="index")
        transient = report.with_status(Status.RETRY)
        if transient and not exhausted:
            events.keep_in_flight(task_id, [o.raw for o in transient])
            _hold_for_retry(self, events, task_id)
            raise ItemsToRetry(f"{len(transient)} events got a transient engine answer; first: {transient[0].error}")
        events.park([(o.raw, o.error or "retries exhausted") for o in transient], stage="engine", attempts=attempts)
        events.finish(task_id)
        return report.counts()

    return drain


def _hold_for_retry(task: Task, queue: EventQueue, task_id: str) -> None:
    """Lease the batch until its retry is due (the back-off the task declares), plus a lease.

    Without it a sweep would take a waiting batch for a dead one. If Redis itself is down the
    lease runs out and a sweep takes the batch back later: nothing is lost either way.
    """
    countdown = get_exponential_backoff_interval(
        factor=task.retry_backoff, retries=task.request.retries, maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter)
    try:
        queue.hold(task_id, countdown + LEASE_S)
    except redis.RedisError:
        pass


def _park_batch(queue: EventQueue, task_id: str, batch: list[Any], exc: Exception, attempts: int) -> dict[str, int]:
    stage = "engine" if isinstance(exc, EngineError) else "worker"
    error = f"{type(exc).__name__}: {exc}"
    queue.park([(event, error) for event in batch], stage=stage, attempts=attempts)
    queue.finish(task_id)
    log.error("parked a batch of %d after %d attempts: %s", len(batch), attempts, error)
    return {"parked": len(batch)}


def run_sweeper(app: Celery, sweep: Callable[[], None], every_s: float) -> None:
    """Run ``sweep`` every ``every_s`` seconds in each worker's main process (Celery's timer).

    Each worker sweeps, so a dead worker's batches come back as long as one worker lives; the
    sweep itself is safe to run concurrently (see :meth:`EventQueue.sweep`).
    """

    def guarded() -> None:
        try:
            sweep()
        except Exception:  # the timer must keep running through a Redis blip
            log.exception("sweep failed; next try in %.0f s", every_s)

    class Sweeper(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.timer_ref: Any = None

        def start(self, worker: Any) -> None:
            self.timer_ref = worker.timer.call_repeatedly(every_s, guarded, priority=10)

        def stop(self, worker: Any) -> None:
            if self.timer_ref is not None:
                self.timer_ref.cancel()

    app.steps["worker"].add(Sweeper)


def warm_up_each_process(load_encoder: Callable[[], Encoder]) -> None:
    """Load the model in each pool process before its first task, not during it."""

    def warm_up(**_: Any) -> None:
        log.info("%s %s", WARM_MARKER, load_encoder().model_version)

    worker_process_init.connect(warm_up, weak=False)
