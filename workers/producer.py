"""The producer API: enqueue events and replay dead letters.

Events are validated here, at the edge: a malformed event is parked at once with an error that
names the field (and reported to the caller), so a bad producer is visible immediately and the
event is still there to be fixed and replayed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from indexer.events import InvalidEvent, parse_event
from workers.queue import EventQueue, task_queue_name


@dataclass
class EnqueueResult:
    queued: int = 0
    parked: list[tuple[str, str]] = field(default_factory=list)  # (dead-letter id, error)


def _schedule_drains(queue: EventQueue, count: int, batch_size: int) -> None:
    from workers.tasks import drain

    for _ in range(math.ceil(count / batch_size)):
        drain.apply_async(queue=task_queue_name(queue.prefix))


def enqueue(events: Iterable[Any], queue: EventQueue, batch_size: int) -> EnqueueResult:
    """Queue valid events and schedule enough drain tasks to take them in batches."""
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
        ids = queue.park(invalid, stage="enqueue")
        result.parked = [(letter_id, error) for letter_id, (_, error) in zip(ids, invalid)]
    if valid:
        queue.push(valid)
        _schedule_drains(queue, len(valid), batch_size)
        result.queued = len(valid)
    return result


def replay(queue: EventQueue, letter_ids: Sequence[str], replacement: Any | None = None,
           batch_size: int = 64) -> int:
    """Put dead letters back on the queue (optionally one corrected event) and schedule them.

    A corrected event is validated first, so a replay cannot park the same mistake again.
    """
    if replacement is not None:
        if len(letter_ids) != 1:
            raise ValueError("a corrected event replaces exactly one dead letter")
        parse_event(replacement)
    for letter_id in letter_ids:
        queue.requeue(letter_id, replacement)
    if letter_ids:
        _schedule_drains(queue, len(letter_ids), batch_size)
    return len(letter_ids)
