"""One batch of events through the write path: validate, encode, bulk-write with versions.

An upsert whose tower input (title, category, image bytes) is what the index already holds, with
the same model, keeps its stored vector: a price or stock update costs a lookup, not an encoding.

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
from typing import Any, Iterable, Literal, Mapping, Sequence

from acebert.encoder import Encoder, ProductInput
from acebert.images import ImageError
from engines import BulkOutcome, SearchEngine
from es_mappings import DIGEST_FIELD, VECTOR_FIELD
from indexer.documents import build_document, encoder_input, input_digest, tombstone
from indexer.events import InvalidEvent, ProductDelete, ProductUpsert, parse_event
from indexer.image_files import check_picture

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


@dataclass(frozen=True)
class _Encoded:
    """An upsert ready to write: its tower input's digest and its vector, fresh or kept from the index."""

    raw: Any
    event: ProductUpsert
    product: ProductInput
    digest: str  # indexer.documents.input_digest(product)
    vector: list[float]  # as the document stores it


def stored_vectors(
    engine: SearchEngine, index: str, ids: Sequence[str], model_version: str
) -> dict[str, tuple[str, list[float]]]:
    """For each of ``ids`` that ``index`` holds with a vector of ``model_version``: (input digest, vector).

    One ``_mget`` per batch. It reads whole sources with their vectors: the engine sends a stored
    source as it is, but must parse and write again one filtered down to the three fields needed
    here, which cost more than the other fields weigh (half of the lookup on OpenSearch).
    A document written before documents kept their digest, a tombstone, or a vector of another
    model (a switch between models is under way) gives nothing, so its product is encoded again.
    The read is not realtime: a copy older than the last refresh at worst misses a reuse, because a
    digest and a model always make the same vector.
    """
    docs = engine.mget(index, ids, realtime=False, vectors=True)["docs"]
    held: dict[str, tuple[str, list[float]]] = {}
    for doc in docs:
        source = doc.get("_source") or {}
        if (doc.get("found") and source.get("model_version") == model_version and source.get(DIGEST_FIELD)
                and source.get(VECTOR_FIELD)):
            held[doc["_id"]] = (source[DIGEST_FIELD], source[VECTOR_FIELD])
    return held


def _encode(
    encoder: Encoder, upserts: Sequence[tuple[Any, ProductUpsert]], image_root: Path,
    stored: Mapping[str, tuple[str, list[float]]],
) -> tuple[list[_Encoded], list[EventOutcome]]:
    """Encode the upserts whose tower input changed; a bad image rejects that event alone, not the batch.

    ``stored`` holds the indexed (digest, vector) of these products (:func:`stored_vectors`): an upsert
    with the same digest (a new price, stock or attributes) keeps its vector and skips the tower, and
    the full decode that checks its picture too.
    """
    ready: list[tuple[Any, ProductUpsert, ProductInput, str]] = []
    rejected: list[EventOutcome] = []
    for raw, event in upserts:
        try:
            product = encoder_input(event, image_root)
        except ImageError as exc:
            rejected.append(_refused(raw, event, exc))
            continue
        ready.append((raw, event, product, input_digest(product)))
    if not ready:
        return [], rejected
    done: list[_Encoded] = []
    fresh: list[tuple[Any, ProductUpsert, ProductInput, str]] = []
    for raw, event, product, digest in ready:
        kept = stored.get(event.product_id)
        if kept is not None and kept[0] == digest:
            done.append(_Encoded(raw, event, product, digest, kept[1]))  # as stored: no conversion
            continue
        if product.image is not None:
            try:  # decoded only on its way to the tower: kept bytes passed this check when first encoded
                check_picture(product.image, Path(event.image or "").name)
            except ImageError as exc:
                rejected.append(_refused(raw, event, exc))
                continue
        fresh.append((raw, event, product, digest))
    if not fresh:
        return done, rejected
    try:
        vectors = encoder.encode_products([product for _, _, product, _ in fresh])
    except ImageError:
        # Find the culprit(s) one by one; the rest of the batch still goes through.
        for raw, event, product, digest in fresh:
            try:
                done.append(_Encoded(raw, event, product, digest, encoder.encode_products([product])[0].tolist()))
            except ImageError as exc:
                rejected.append(_refused(raw, event, exc))
        return done, rejected
    done += [_Encoded(*item, vector) for item, vector in zip(fresh, vectors.tolist())]
    return done, rejected


def _refused(raw: Any, event: ProductUpsert, error: ImageError) -> EventOutcome:
    """The outcome of an upsert whose image was refused: parked with the reason, the batch goes on."""
    return EventOutcome(raw, Status.REJECTED, f"product {event.product_id}: {error}")


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

    stored = stored_vectors(engine, index, [e.product_id for _, e in upserts], encoder.model_version) if upserts else {}
    encoded, rejected = _encode(encoder, upserts, image_root, stored)
    report.outcomes += rejected

    actions: list[dict[str, Any]] = []
    pending: list[tuple[Any, ProductUpsert | ProductDelete]] = []
    for item in encoded:
        document = build_document(item.event, model_version=encoder.model_version,
                                  has_image=item.product.image is not None, encoded_input=item.digest)
        document[VECTOR_FIELD] = item.vector
        actions.append(_action(index, item.event, document, version_type))
        pending.append((item.raw, item.event))
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
