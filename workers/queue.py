"""The event queue, the in-flight lists, their leases and the dead-letter list, all in Redis.

Kept apart from Celery on purpose: producers, workers and the replay CLI share these few
operations, and each is one atomic Redis transaction.

Nothing stranded: a task that claims a batch holds a short lease on it and renews it while it
works (:meth:`EventQueue.leased`). A batch whose lease ran out belongs to a dead worker (killed,
out of memory, hard time limit, acknowledged without finishing): :meth:`EventQueue.sweep`,
which every worker runs every few seconds, takes it back. Its events come back one at a time
("suspects"), so an event that kills its worker process takes only itself down, and after
:data:`MAX_CRASHES` crashes it is parked while the rest of its batch is indexed.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import redis

# A batch whose lease is not renewed for this long belongs to a dead worker.
LEASE_S = 6.0
# An event that was in flight in this many dead workers' batches (the last ones alone) is parked.
MAX_CRASHES = 3


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


@dataclass
class SweepReport:
    """What one sweep took back from dead workers."""

    returned: int = 0  # events put back, one at a time, on the suspect list
    parked: list[str] = field(default_factory=list)  # dead-letter ids of events that kept crashing


def _digest(item: bytes) -> str:
    return hashlib.sha1(item).hexdigest()


def _owner() -> str:
    """Who holds a lease: host and process id, for an operator reading Redis (and for tests)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class EventQueue:
    def __init__(self, client: redis.Redis, prefix: str = "acebert") -> None:
        self.redis = client
        self.prefix = prefix
        self.pending_key = f"{prefix}:events:pending"
        self.suspect_key = f"{prefix}:events:suspect"
        self.crashes_key = f"{prefix}:events:crashes"
        self.dead_key = f"{prefix}:events:dead"
        self._in_flight_prefix = f"{prefix}:events:in-flight:"
        self._lease_prefix = f"{prefix}:events:lease:"

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
        """Events waiting for a drain task (the suspects a sweep took back included)."""
        return sum(self._waiting())

    def _waiting(self) -> tuple[int, int]:
        """(queued events, suspects), read in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.pending_key)
            pipe.llen(self.suspect_key)
            queued, suspects = (int(n) for n in pipe.execute())
        return queued, suspects

    # --- workers -------------------------------------------------------------------------
    def drains_needed(self, batch_size: int) -> int:
        """Drain tasks the queued events need: one per suspect (claimed alone), one per batch of the rest."""
        queued, suspects = self._waiting()
        return suspects + math.ceil(queued / batch_size)

    def lease_key(self, task_id: str) -> str:
        return self._lease_prefix + task_id

    def _lease(self, task_id: str, seconds: float | None = None) -> None:
        """Take or renew the task's lease for ``seconds`` (default :data:`LEASE_S`, read at call time)."""
        self.redis.set(self.lease_key(task_id), _owner(), px=int((LEASE_S if seconds is None else seconds) * 1000))

    def _keys(self, prefix: str) -> Iterator[str]:
        """The names of the keys that start with ``prefix``."""
        for key in self.redis.scan_iter(match=prefix + "*"):
            yield key.decode() if isinstance(key, bytes) else key

    def claim(self, task_id: str, limit: int) -> list[Any]:
        """The task's in-flight events: left over from an earlier delivery, else newly claimed.

        A suspect (an event a sweep took back from a dead worker) is claimed alone, so that an
        event that kills its worker process is found. The lease is taken before anything is
        moved, so a sweep never sees this task's in-flight list without one.
        """
        key = self.in_flight_key(task_id)
        self._lease(task_id)
        left_over = self.redis.lrange(key, 0, -1)
        if left_over:
            return [json.loads(item) for item in left_over]
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.lmove(self.suspect_key, key, "LEFT", "RIGHT")
            suspect = pipe.execute()[0]
        if suspect is not None:
            return [json.loads(suspect)]
        with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(limit):
                pipe.lmove(self.pending_key, key, "LEFT", "RIGHT")
            moved = pipe.execute()
        return [json.loads(item) for item in moved if item is not None]

    @contextmanager
    def leased(self, task_id: str, every_s: float = LEASE_S / 4) -> Iterator[None]:
        """Renew the task's lease from a background thread while the block runs.

        Encoding a batch holds the GIL for long stretches at most in small pieces (torch and
        ONNX Runtime release it), so a renewal every quarter of the lease keeps a live task's
        batch from ever looking dead.
        """
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(every_s):
                try:
                    self._lease(task_id)
                except redis.RedisError:
                    pass  # the task itself will meet the outage and retry

        thread = threading.Thread(target=renew, name=f"lease-{task_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def hold(self, task_id: str, seconds: float) -> None:
        """Keep the task's batch leased for ``seconds``: it waits for a retry, it is not dead."""
        self._lease(task_id, seconds)

    def keep_in_flight(self, task_id: str, events: Sequence[Any]) -> None:
        """Narrow the task's in-flight list to ``events`` (those still to be retried)."""
        key = self.in_flight_key(task_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if events:
                pipe.rpush(key, *(json.dumps(e) for e in events))
            pipe.execute()

    def finish(self, task_id: str) -> None:
        """Drop the task's in-flight list and lease, and forget the crashes of its events."""
        key = self.in_flight_key(task_id)
        if self.redis.hlen(self.crashes_key):
            digests = [_digest(item) for item in self.redis.lrange(key, 0, -1)]
            if digests:
                self.redis.hdel(self.crashes_key, *digests)
        self.redis.delete(key, self.lease_key(task_id))

    def lease_owners(self) -> dict[str, str]:
        """Task id -> ``host:pid`` of every live lease on an in-flight batch."""
        owners = {}
        for name in self._keys(self._lease_prefix):
            value = self.redis.get(name)
            if value is not None:
                owners[name[len(self._lease_prefix):]] = value.decode()
        return owners

    def in_flight(self) -> int:
        """Events claimed by tasks that have not finished (or died and await a sweep)."""
        return sum(int(self.redis.llen(name)) for name in self._keys(self._in_flight_prefix))

    def wait_drained(
        self,
        timeout_s: float,
        poll_s: float = 0.5,
        check: Callable[[], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Block until no event is pending or in flight (indexed or parked, not yet refreshed).

        ``check`` runs at every poll and may raise (say, because the worker process exited);
        ``progress`` gets the number of events still left. Raises :class:`TimeoutError` after
        ``timeout_s`` with what is left, so a stuck pipeline explains itself.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if check is not None:
                check()
            left = self.pending() + self.in_flight()
            if progress is not None:
                progress(left)
            if left == 0:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{left} events still pending or in flight after {timeout_s:.0f} s "
                                   f"(queue {self.prefix!r}); are the workers running?")
            time.sleep(poll_s)

    def sweep(self) -> SweepReport:
        """Take back every in-flight batch whose lease ran out (its worker died).

        Each batch is taken in one transaction that watches its list and lease, so a sweep that
        races another sweep, or the task itself, changes nothing. Each event goes back on the
        suspect list, to be claimed alone; an event that was in :data:`MAX_CRASHES` dead
        batches, the last one alone, is parked instead.
        """
        report = SweepReport()
        for name in self._keys(self._in_flight_prefix):
            task_id = name[len(self._in_flight_prefix):]
            try:
                self._sweep_one(name, self.lease_key(task_id), report)
            except redis.WatchError:
                continue  # another sweep took it, or its task came back to life
        return report

    def _sweep_one(self, key: str, lease: str, report: SweepReport) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(key, lease)
            if pipe.exists(lease):
                return
            items = pipe.lrange(key, 0, -1)
            digests = [_digest(item) for item in items]
            crashes = [int(n or 0) + 1 for n in pipe.hmget(self.crashes_key, digests)] if items else []
            pipe.multi()
            returned, parked = 0, []
            for item, digest, count in zip(items, digests, crashes):
                if count >= MAX_CRASHES and len(items) == 1:
                    error = (f"the event was in flight when a worker process died {count} times; "
                             "parked so that the rest of the queue is indexed")
                    letter = DeadLetter(uuid.uuid4().hex, json.loads(item), error, "worker", time.time(), count)
                    pipe.hset(self.dead_key, letter.id, letter.to_json())
                    pipe.hdel(self.crashes_key, digest)
                    parked.append(letter.id)
                else:
                    pipe.hset(self.crashes_key, digest, count)
                    pipe.rpush(self.suspect_key, item)
                    returned += 1
            pipe.delete(key)
            pipe.execute()
        report.returned += returned
        report.parked += parked

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
