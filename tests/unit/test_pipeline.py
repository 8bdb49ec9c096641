"""One batch through the write path: one action per product, outcomes matched to their events."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from engines import BulkOutcome
from indexer.pipeline import Status, index_events
from tests.unit.test_query_cache import CountingEncoder


class ReversingBulk:
    """An engine whose bulk answers come back in reverse order, as items re-sent after a 429 do."""

    kind = "test"

    def __init__(self, statuses: Mapping[str, int] | None = None) -> None:
        self.statuses = dict(statuses or {})
        self.actions: list[dict[str, Any]] = []

    def bulk(self, actions: Iterable[Mapping[str, Any]]) -> list[BulkOutcome]:
        self.actions = [dict(a) for a in actions]
        return [BulkOutcome(a["_id"], a["_op_type"], self.statuses.get(a["_id"], 201)) for a in reversed(self.actions)]


def upsert(pid: str, version: int) -> dict[str, Any]:
    return {"type": "upsert", "product_id": pid, "version": version, "title": f"{pid} v{version}"}


def test_only_the_newest_event_per_product_is_sent_and_older_ones_are_stale():
    engine = ReversingBulk()
    delete_v3 = {"type": "delete", "product_id": "a", "version": 3}
    events = [upsert("a", 2), delete_v3, upsert("a", 1), upsert("b", 1)]
    report = index_events(events, engine=engine, encoder=CountingEncoder(), index="i")
    assert [(a["_id"], a["version"], a["_source"].get("deleted")) for a in engine.actions] == [("b", 1, None),
                                                                                               ("a", 3, True)]
    assert set(engine.actions[1]["_source"]) == {"product_id", "deleted", "event_version", "updated_at"}
    outcome = {(o.raw["product_id"], o.raw["version"]): o.status for o in report.outcomes}
    assert outcome == {("a", 2): Status.STALE, ("a", 1): Status.STALE, ("a", 3): Status.DELETED,
                       ("b", 1): Status.INDEXED}


def test_outcomes_reach_their_own_events_whatever_order_they_come_back_in():
    engine = ReversingBulk({"b": 429, "c": 400})
    report = index_events([upsert("a", 1), upsert("b", 1), upsert("c", 1)], engine=engine,
                          encoder=CountingEncoder(), index="i")
    outcome = {o.raw["product_id"]: o.status for o in report.outcomes}
    assert outcome == {"a": Status.INDEXED, "b": Status.RETRY, "c": Status.REJECTED}


def test_a_reembed_turns_a_tombstone_back_into_its_delete():
    from indexer.reembed import _as_event

    tombstone = {"_source": {"product_id": "a", "deleted": True, "event_version": 9, "updated_at": "2026-11-30"}}
    assert _as_event(tombstone) == {"type": "delete", "product_id": "a", "version": 9}
    product = {"_source": {"product_id": "b", "title": "Cap", "event_version": 4, "attributes": {}}}
    assert _as_event(product) == {"type": "upsert", "version": 4, "product_id": "b", "title": "Cap"}
