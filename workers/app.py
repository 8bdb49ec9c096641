"""The Celery application factory, and the names producers and workers agree on.

Reliability settings, and why:
- ``acks_late`` + ``reject_on_worker_lost``: a task is acknowledged only after it ran, so a
  killed worker's task is delivered again (tasks are idempotent: external versions).
- prefetch 1: a worker holds no more than it is working on, so a dead worker strands little.
- ``visibility_timeout`` well above a batch's run time, and a fast unacked-restore sweep so a
  dead worker's task comes back in seconds, not minutes (kombu's defaults take 100 s or more).
- ``acks_on_failure_or_timeout`` off: a task that failed or ran out of time is delivered again.
- The events themselves do not wait for the message: a batch whose lease ran out is taken back
  by any live worker's sweep within seconds (``workers.queue``).

The app carries configuration only. The worker entry point (``workers.main``) registers the
drain task on it; a producer sends that task by name (:data:`DRAIN_TASK`), so it never imports
the task module and the model behind it.
"""
from __future__ import annotations

from celery import Celery

from settings import Settings

DRAIN_TASK = "workers.drain"


def task_queue_name(prefix: str) -> str:
    """The Celery queue that carries the drain tasks of the event queue with this prefix."""
    return f"{prefix}.drain"


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.redis_url`` whose default queue is this event queue's."""
    app = Celery("workers", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that failed or hit its time limit is not acknowledged: its message comes back.
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        task_default_queue=task_queue_name(settings.queue_prefix),
        task_time_limit=settings.ingest_task_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.ingest_visibility_timeout_s,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app
