"""The event queue, the in-flight lists and the dead-letter list, all in Redis.

Kept apart from Celery on purpose: producers, workers and the replay CLI share these few
operations, and each is one atomic Redis transaction.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import redis


@dataclass(frozen=True)
class DeadLetter:
    """An event that could not be indexed, with why, parked until an operator replays it."""

    id: str
    event: Any
    error: str
    stage: str
    parked_at: float
    attempts: int = 1

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, data: str | bytes) -> "DeadLetter":
        return cls(**json.loads(data))


def task_queue_name(prefix: str) -> str:
    """The Celery queue that carries the drain tasks of the event queue with this prefix."""
    return f"{prefix}.drain"


class EventQueue:
    def __init__(self, client: redis.Redis, prefix: str = "acebert") -> None:
        self.redis = client
        self.prefix = prefix
        self.pending_key = f"{prefix}:events:pending"
        self.dead_key = f"{prefix}:events:dead"
        self._in_flight_prefix = f"{prefix}:events:in-flight:"

    @classmethod
    def from_url(cls, url: str, prefix: str = "acebert") -> "EventQueue":
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), prefix)

    def in_flight_key(self, task_id: str) -> str:
        return self._in_flight_prefix + task_id

    # --- producers -----------------------------------------------------------------------
    def push(self, events: Sequence[Any]) -> int:
        """Append raw events to the queue; returns the queue's length afterwards."""
        if not events:
            return int(self.redis.llen(self.pending_key))
        return int(self.redis.rpush(self.pending_key, *(json.dumps(e) for e in events)))

    def pending(self) -> int:
        return int(self.redis.llen(self.pending_key))

    # --- workers -------------------------------------------------------------------------
    def claim(self, task_id: str, limit: int) -> list[Any]:
        """The task's in-flight events: left over from an earlier delivery, else newly claimed."""
        key = self.in_flight_key(task_id)
        left_over = self.redis.lrange(key, 0, -1)
        if left_over:
            return [json.loads(item) for item in left_over]
        with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(limit):
                pipe.lmove(self.pending_key, key, "LEFT", "RIGHT")
            moved = pipe.execute()
        return [json.loads(item) for item in moved if item is not None]

    def keep_in_flight(self, task_id: str, events: Sequence[Any]) -> None:
        """Narrow the task's in-flight list to ``events`` (those still to be retried)."""
        key = self.in_flight_key(task_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if events:
                pipe.rpush(key, *(json.dumps(e) for e in events))
            pipe.execute()

    def finish(self, task_id: str) -> None:
        self.redis.delete(self.in_flight_key(task_id))

    def in_flight(self) -> int:
        """Events claimed by tasks that have not finished (or died and await redelivery)."""
        total = 0
        for key in self.redis.scan_iter(match=self._in_flight_prefix + "*"):
            total += int(self.redis.llen(key))
        return total

    # --- dead letters --------------------------------------------------------------------
    def park(self, events_with_errors: Iterable[tuple[Any, str]], stage: str, attempts: int = 1) -> list[str]:
        """Park events with their errors; returns the dead-letter ids."""
        letters = [
            DeadLetter(uuid.uuid4().hex, event, error, stage, time.time(), attempts)
            for event, error in events_with_errors
        ]
        if letters:
            self.redis.hset(self.dead_key, mapping={d.id: d.to_json() for d in letters})
        return [d.id for d in letters]

    def dead_letters(self) -> list[DeadLetter]:
        letters = [DeadLetter.from_json(v) for v in self.redis.hvals(self.dead_key)]
        return sorted(letters, key=lambda d: d.parked_at)

    def dead_letter(self, letter_id: str) -> DeadLetter:
        data = self.redis.hget(self.dead_key, letter_id)
        if data is None:
            raise KeyError(f"no dead letter with id {letter_id!r}")
        return DeadLetter.from_json(data)

    def requeue(self, letter_id: str, replacement: Any | None = None) -> Any:
        """Move a dead letter back to the queue, optionally with a corrected event."""
        letter = self.dead_letter(letter_id)
        event = letter.event if replacement is None else replacement
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.pending_key, json.dumps(event))
            pipe.hdel(self.dead_key, letter_id)
            pipe.execute()
        return event

    def discard(self, letter_id: str) -> None:
        if not self.redis.hdel(self.dead_key, letter_id):
            raise KeyError(f"no dead letter with id {letter_id!r}")
