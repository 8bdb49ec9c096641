"""The producer API: enqueue events and replay dead letters.

Events are validated here, at the edge: a malformed event is parked at once with an error that
names the field (and reported to the caller), so a bad producer is visible immediately and the
event is still there to be fixed and replayed.

Drain tasks are sent by name (:data:`workers.app.DRAIN_TASK`): a producer (the API, the CLI)
needs Redis and the Celery app's configuration, not the task module or the model behind it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from celery import Celery

from indexer.events import InvalidEvent, parse_event
from workers.app import DRAIN_TASK, task_queue_name
from workers.queue import EventQueue


@dataclass
class EnqueueResult:
    queued: int = 0
    parked: list[tuple[str, str]] = field(default_factory=list)  # (dead-letter id, error)


class Producer:
    """Queues events in Redis and schedules enough drain tasks to take them in batches."""

    def __init__(self, queue: EventQueue, celery: Celery, batch_size: int) -> None:
        self.queue = queue
        self.celery = celery
        self.batch_size = batch_size

    def enqueue(self, events: Iterable[Any]) -> EnqueueResult:
        """Queue the valid events; park the malformed ones with an error that names the field."""
        valid: list[Any] = []
        invalid: list[tuple[Any, str]] = []
        for raw in events:
            try:
                parse_event(raw)
                valid.append(raw)
            except InvalidEvent as exc:
                invalid.append((raw, str(exc)))
        result = EnqueueResult()
        if invalid:
            ids = self.queue.park(invalid, stage="enqueue")
            result.parked = [(letter_id, error) for letter_id, (_, error) in zip(ids, invalid)]
        if valid:
            self.queue.push(valid)
            self._schedule_drains(len(valid))
            result.queued = len(valid)
        return result

    def replay(self, letter_ids: Sequence[str], replacement: Any | None = None) -> int:
        """Put dead letters back on the queue (optionally one corrected event) and schedule them.

        A corrected event is validated first, so a replay cannot park the same mistake again.
        """
        if replacement is not None:
            if len(letter_ids) != 1:
                raise ValueError("a corrected event replaces exactly one dead letter")
            parse_event(replacement)
        for letter_id in letter_ids:
            self.queue.requeue(letter_id, replacement)
        if letter_ids:
            self._schedule_drains(len(letter_ids))
        return len(letter_ids)

    def schedule_backlog(self) -> int:
        """Drain tasks for queued events that have none waiting; returns how many were sent.

        Events can be left without a task: a sweep took back a dead worker's batch, or a drain
        message was lost. The broker's queue is a Redis list on the same server as the events,
        so its length says how many drains wait. Sending one too many costs an empty claim.
        """
        waiting = int(self.queue.redis.llen(task_queue_name(self.queue.prefix)))
        needed = max(self.queue.drains_needed(self.batch_size) - waiting, 0)
        self._send_drains(needed)
        return needed

    def _schedule_drains(self, count: int) -> None:
        self._send_drains(math.ceil(count / self.batch_size))

    def _send_drains(self, tasks: int) -> None:
        for _ in range(tasks):
            self.celery.send_task(DRAIN_TASK, queue=task_queue_name(self.queue.prefix))
