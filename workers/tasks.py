"""The one task: drain a micro-batch of events from the queue into the index."""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from celery import Task
from celery.signals import worker_process_init

from acebert.encoder import Encoder, load_encoder
from engines import EngineError, SearchEngine, connect
from es_mappings import IndexNames
from indexer.indices import ensure_index
from indexer.pipeline import Status, index_events
from workers.app import app, settings
from workers.queue import EventQueue

log = logging.getLogger(__name__)

MAX_RETRIES = int(os.environ.get("INGEST_MAX_RETRIES", "5"))
# Logged by each pool process once its model is loaded; devstack waits for it.
WARM_MARKER = "encoder loaded:"


@lru_cache(maxsize=1)
def _encoder() -> Encoder:
    return load_encoder(settings.encoder)


@lru_cache(maxsize=1)
def _engine() -> SearchEngine:
    engine = connect(settings.engine, settings.engine_url)
    ensure_index(engine, IndexNames(settings.index_prefix), _encoder().dimension)
    return engine


@lru_cache(maxsize=1)
def _queue() -> EventQueue:
    return EventQueue.from_url(settings.redis_url, settings.queue_prefix)


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Load the model in each pool process before the first task, not during it."""
    threads = os.environ.get("ACEBERT_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    encoder = _encoder()
    log.info("%s %s", WARM_MARKER, encoder.model_version)


def _backoff(retries: int) -> float:
    return min(2.0 ** retries, 30.0)


@app.task(bind=True, name="workers.drain", max_retries=MAX_RETRIES)
def drain(self: Task) -> dict[str, int]:
    """Index up to one batch of queued events; park what can never succeed.

    The batch is this task's in-flight list in Redis. A batch-wide failure (engine down, index
    refused, anything unexpected) retries the task (same id, same list) with back-off; once
    retries are spent, the events are parked with the last error, so an outage ends in the
    dead-letter list, never in silence.
    """
    queue = _queue()
    task_id = self.request.id
    batch = queue.claim(task_id, settings.batch_size)
    if not batch:
        return {}
    exhausted = self.request.retries >= self.max_retries
    try:
        report = index_events(
            batch,
            engine=_engine(),
            encoder=_encoder(),
            index=IndexNames(settings.index_prefix).write_alias,
            image_root=settings.image_root,
        )
    except Exception as exc:  # the whole batch failed: engine down, index missing, a bug
        stage = "engine" if isinstance(exc, EngineError) else "worker"
        if exhausted:
            error = f"{type(exc).__name__}: {exc}"
            queue.park([(event, error) for event in batch], stage=stage, attempts=self.request.retries + 1)
            queue.finish(task_id)
            log.error("parked a batch of %d after %d attempts: %s", len(batch), self.request.retries + 1, error)
            return {"parked": len(batch)}
        log.warning("batch of %d failed (%s), retrying: %s", len(batch), stage, exc)
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))

    rejected = report.with_status(Status.REJECTED)
    queue.park([(o.raw, o.error or "rejected") for o in rejected], stage="index")
    transient = report.with_status(Status.RETRY)
    if transient and not exhausted:
        queue.keep_in_flight(task_id, [o.raw for o in transient])
        raise self.retry(countdown=_backoff(self.request.retries))
    queue.park([(o.raw, o.error or "retries exhausted") for o in transient], stage="engine",
               attempts=self.request.retries + 1)
    queue.finish(task_id)
    return report.counts()
