"""One batch of events through the write path: validate, encode, bulk-write with versions.

Every event gets exactly one outcome. ``indexed``/``deleted``/``stale`` are done (a stale event
lost to a newer version already in the index, which is what idempotent replay means);
``rejected`` events can never succeed as they are and must be parked for an operator;
``retry`` events hit a transient engine problem and should be tried again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from acebert.encoder import Encoder, ProductInput
from acebert.images import ImageError
from engines import BulkOutcome, SearchEngine
from es_mappings import VECTOR_FIELD
from indexer.documents import build_document, encoder_input, tombstone
from indexer.events import InvalidEvent, ProductDelete, ProductUpsert, parse_event

log = logging.getLogger(__name__)
VersionType = Literal["external", "external_gte"]


class Status(str, Enum):
    INDEXED = "indexed"
    DELETED = "deleted"
    STALE = "stale"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class EventOutcome:
    raw: Any
    status: Status
    error: str | None = None

    @property
    def product_id(self) -> str | None:
        return self.raw.get("product_id") if isinstance(self.raw, dict) else None


@dataclass
class BatchReport:
    outcomes: list[EventOutcome] = field(default_factory=list)

    def with_status(self, *statuses: Status) -> list[EventOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for outcome in self.outcomes:
            counts[outcome.status.value] += 1
        return counts


def _encode(
    encoder: Encoder, upserts: Sequence[tuple[Any, ProductUpsert]], image_root: Path
) -> tuple[list[tuple[Any, ProductUpsert, ProductInput, np.ndarray]], list[EventOutcome]]:
    """Encode the upserts; a bad image rejects that event alone, not the batch."""
    ready: list[tuple[Any, ProductUpsert, ProductInput]] = []
    rejected: list[EventOutcome] = []
    for raw, event in upserts:
        try:
            ready.append((raw, event, encoder_input(event, image_root)))
        except ImageError as exc:
            rejected.append(EventOutcome(raw, Status.REJECTED, f"product {event.product_id}: {exc}"))
    if not ready:
        return [], rejected
    inputs = [product for _, _, product in ready]
    try:
        vectors = encoder.encode_products(inputs)
    except ImageError:
        # Find the culprit(s) one by one; the rest of the batch still goes through.
        encoded, rows = [], []
        for item in ready:
            try:
                rows.append(encoder.encode_products([item[2]])[0])
                encoded.append(item)
            except ImageError as exc:
                rejected.append(EventOutcome(item[0], Status.REJECTED, f"product {item[1].product_id}: {exc}"))
        ready, vectors = encoded, np.asarray(rows, dtype=np.float32)
    return [(raw, ev, prod, vec) for (raw, ev, prod), vec in zip(ready, vectors)], rejected


def _outcome(raw: Any, event: ProductUpsert | ProductDelete, result: BulkOutcome) -> EventOutcome:
    if result.ok:
        return EventOutcome(raw, Status.DELETED if isinstance(event, ProductDelete) else Status.INDEXED)
    if result.stale:
        return EventOutcome(raw, Status.STALE)
    message = f"product {event.product_id}: engine answered {result.status}: {result.error}"
    return EventOutcome(raw, Status.RETRY if result.retryable else Status.REJECTED, message)


def index_events(
    raw_events: Iterable[Any],
    *,
    engine: SearchEngine,
    encoder: Encoder,
    index: str,
    image_root: Path = Path("."),
    version_type: VersionType = "external",
) -> BatchReport:
    """Write one batch of raw (decoded JSON) events into ``index`` (usually the write alias).

    ``external`` versioning refuses an event whose version the index already holds (a replay is
    stale); ``external_gte`` rewrites it, which a switch between models needs to re-encode a
    document at its own version (:mod:`indexer.reembed`).

    Raises :class:`engines.EngineUnavailable` when the engine cannot be reached at all: the
    whole batch is then worth retrying, and nothing has been partially reported.
    """
    report = BatchReport()
    newest: dict[str, tuple[Any, ProductUpsert | ProductDelete]] = {}
    for raw in raw_events:
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            report.outcomes.append(EventOutcome(raw, Status.REJECTED, str(exc)))
            continue
        # One action per product and batch: the newest event wins here, and every older one is
        # stale, as the engine's external versioning would have answered. Two actions for one id
        # in one bulk request could come back in either order after a retry.
        held = newest.get(event.product_id)
        if held is None or event.version > held[1].version:
            if held is not None:
                report.outcomes.append(EventOutcome(held[0], Status.STALE))
            newest[event.product_id] = (raw, event)
        else:
            report.outcomes.append(EventOutcome(raw, Status.STALE))
    upserts = [(raw, e) for raw, e in newest.values() if isinstance(e, ProductUpsert)]
    deletes = [(raw, e) for raw, e in newest.values() if isinstance(e, ProductDelete)]

    encoded, rejected = _encode(encoder, upserts, image_root)
    report.outcomes += rejected

    actions: list[dict[str, Any]] = []
    pending: list[tuple[Any, ProductUpsert | ProductDelete]] = []
    for raw, event, product, vector in encoded:
        document = build_document(
            event, model_version=encoder.model_version, has_image=product.image is not None
        )
        document[VECTOR_FIELD] = vector.tolist()
        actions.append(_action(index, event, document, version_type))
        pending.append((raw, event))
    for raw, delete in deletes:
        # A delete writes a tombstone at its version rather than removing the document: the
        # version then outlives index.gc_deletes, and a stale upsert replayed later is refused.
        actions.append(_action(index, delete, tombstone(delete), version_type))
        pending.append((raw, delete))

    results = engine.bulk(actions) if actions else []
    if len(results) != len(pending):
        raise RuntimeError(f"bulk returned {len(results)} outcomes for {len(pending)} actions")
    # Each product has one action in this batch, so its id names its outcome, whatever the order.
    by_id = {event.product_id: (raw, event) for raw, event in pending}
    for result in results:
        raw, event = by_id.pop(result.doc_id)
        report.outcomes.append(_outcome(raw, event, result))
    log.info("batch written: %s", report.counts())
    return report


def _action(
    index: str, event: ProductUpsert | ProductDelete, source: dict[str, Any], version_type: VersionType
) -> dict[str, Any]:
    """One bulk ``index`` action at the event's external version (a tombstone for a delete)."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": event.product_id,
        "version": event.version,
        "version_type": version_type,
        "_source": source,
    }
