"""One batch through the write path: one action per product, outcomes matched to their events."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from engines import BulkOutcome
from indexer.pipeline import Status, index_events
from tests.unit.test_image_files import _jpeg
from tests.unit.test_query_cache import CountingEncoder


class ReversingBulk:
    """An engine whose bulk answers come back in reverse order, as items re-sent after a 429 do.

    It keeps what it was sent and gives it back to ``_mget``, as an index does after a refresh.
    """

    kind = "test"

    def __init__(self, statuses: Mapping[str, int] | None = None) -> None:
        self.statuses = dict(statuses or {})
        self.actions: list[dict[str, Any]] = []
        self.held: dict[str, dict[str, Any]] = {}

    def bulk(self, actions: Iterable[Mapping[str, Any]]) -> list[BulkOutcome]:
        self.actions = [dict(a) for a in actions]
        self.held.update({a["_id"]: a["_source"] for a in self.actions if self.statuses.get(a["_id"], 201) < 300})
        return [BulkOutcome(a["_id"], a["_op_type"], self.statuses.get(a["_id"], 201)) for a in reversed(self.actions)]

    def mget(self, index: str, ids: Sequence[str], realtime: bool = True, vectors: bool = False) -> dict[str, Any]:
        docs = [{"_id": i, "found": True,
                 "_source": {k: v for k, v in self.held[i].items() if vectors or k != "vector"}}
                if i in self.held else {"_id": i, "found": False} for i in ids]
        return {"docs": docs}


class TitleEncoder:
    """Products encoded as (title length, number of products encoded before): each encoding is told apart."""

    dimension = 2

    def __init__(self, model_version: str = "m1") -> None:
        self.model_version = model_version
        self.encoded: list[str] = []

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        raise AssertionError("the write path encodes no query")

    def encode_products(self, products: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        rows = [[len(p.title), len(self.encoded) + i] for i, p in enumerate(products)]
        self.encoded += [p.title for p in products]
        return np.asarray(rows, dtype=np.float32)


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


def vectors_sent(engine: ReversingBulk) -> dict[str, list[float]]:
    return {a["_id"]: a["_source"]["vector"] for a in engine.actions}


def test_an_update_that_leaves_the_tower_input_alone_keeps_the_stored_vector():
    engine, encoder = ReversingBulk(), TitleEncoder()
    index_events([upsert("a", 1), upsert("b", 1)], engine=engine, encoder=encoder, index="i")
    first = vectors_sent(engine)
    price_only = [{**upsert("a", 1), "version": 2, "price": 12.5}, {**upsert("b", 1), "version": 2, "brand": "Acme"}]
    report = index_events(price_only, engine=engine, encoder=encoder, index="i")
    assert encoder.encoded == ["a v1", "b v1"]  # nothing encoded the second time
    assert vectors_sent(engine) == first
    assert [a["_source"].get("price") for a in engine.actions] == [12.5, None]
    assert {o.status for o in report.outcomes} == {Status.INDEXED}


def test_a_new_title_category_or_model_is_encoded_again():
    engine, encoder = ReversingBulk(), TitleEncoder()
    index_events([upsert("a", 1), upsert("b", 1)], engine=engine, encoder=encoder, index="i")
    index_events([{**upsert("a", 1), "version": 2, "title": "a, now blue"},
                  {**upsert("b", 1), "version": 2, "category": "Apparel > Topwear"}],
                 engine=engine, encoder=encoder, index="i")
    assert encoder.encoded == ["a v1", "b v1", "a, now blue", "b v1"]
    other_model = TitleEncoder("m2")
    index_events([{**upsert("a", 1), "version": 3, "title": "a, now blue"}], engine=engine, encoder=other_model,
                 index="i")
    assert other_model.encoded == ["a, now blue"]
    assert engine.actions[0]["_source"]["model_version"] == "m2"


def test_a_document_without_a_digest_is_encoded_again():
    """An index filled by an earlier release holds no ``encoded_input``: its products are re-encoded once."""
    engine, encoder = ReversingBulk(), TitleEncoder()
    index_events([upsert("a", 1)], engine=engine, encoder=encoder, index="i")
    del engine.held["a"]["encoded_input"]
    index_events([{**upsert("a", 1), "version": 2, "price": 3.0}], engine=engine, encoder=encoder, index="i")
    assert encoder.encoded == ["a v1", "a v1"]
    assert "encoded_input" in engine.actions[0]["_source"]


def test_a_picture_is_decoded_only_on_its_way_to_the_tower(tmp_path, monkeypatch):
    """A broken new picture is parked; a price change with the bytes that made its vector skips the decode."""
    import indexer.pipeline as pipeline

    (tmp_path / "ok.jpg").write_bytes(_jpeg())
    (tmp_path / "truncated.jpg").write_bytes(_jpeg()[:200])
    checked: list[str] = []
    monkeypatch.setattr(pipeline, "check_picture", _counting(pipeline.check_picture, checked))
    engine, encoder = ReversingBulk(), TitleEncoder()
    first = index_events([{**upsert("a", 1), "image": "ok.jpg"}, {**upsert("b", 1), "image": "truncated.jpg"}],
                         engine=engine, encoder=encoder, index="i", image_root=tmp_path)
    assert {o.product_id: o.status for o in first.outcomes} == {"a": Status.INDEXED, "b": Status.REJECTED}
    assert "not a decodable picture" in first.with_status(Status.REJECTED)[0].error
    assert checked == ["ok.jpg", "truncated.jpg"] and encoder.encoded == ["a v1"]
    later = index_events([{**upsert("a", 1), "image": "ok.jpg", "version": 2, "price": 9.0}],
                         engine=engine, encoder=encoder, index="i", image_root=tmp_path)
    assert [o.status for o in later.outcomes] == [Status.INDEXED]
    assert checked == ["ok.jpg", "truncated.jpg"] and encoder.encoded == ["a v1"]


def _counting(check, names: list[str]):
    def counted(data: bytes, name: str) -> None:
        names.append(name)
        check(data, name)
    return counted
