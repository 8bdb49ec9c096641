"""The Celery application and its settings.

Reliability settings, and why:
- ``acks_late`` + ``reject_on_worker_lost``: a task is acknowledged only after it ran, so a
  killed worker's task is delivered again (tasks are idempotent: external versions).
- prefetch 1: a worker holds no more than it is working on, so a dead worker strands little.
- ``visibility_timeout`` well above a batch's run time, and a fast unacked-restore sweep so a
  dead worker's task comes back in seconds, not minutes (kombu's defaults take 100 s or more).
"""
from __future__ import annotations

import os

from celery import Celery

from settings import Settings
from workers.queue import task_queue_name

settings = Settings.from_env()

app = Celery("workers", broker=settings.redis_url, include=["workers.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=task_queue_name(settings.queue_prefix),
    task_time_limit=int(os.environ.get("INGEST_TASK_TIME_LIMIT", "240")),
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": int(os.environ.get("INGEST_VISIBILITY_TIMEOUT", "300")),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    worker_hijack_root_logger=False,
)
