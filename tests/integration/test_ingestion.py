"""The write path on real engines, Redis and Celery workers: events in, documents out."""
from __future__ import annotations

import json
import time
import uuid


from dataclasses import replace

from devstack import LocalStack, free_port
from es_mappings import IndexNames
from indexer.indices import current_versions
from query_rewriter.search import SearchRequest
from system import System
from tests.integration.conftest import SAMPLE, Stack, wait_for


def new_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def upsert(pid: str, version: int, title: str, **fields) -> dict:
    return {"type": "upsert", "product_id": pid, "version": version, "title": title, **fields}


def test_index_version_and_aliases(stack: Stack):
    names = IndexNames("itest")
    read, write = current_versions(stack.engine, names)
    assert read == write == "itest-v1"
    mapping = stack.engine.mapping("itest-v1")["properties"]
    expected = "knn_vector" if stack.kind == "opensearch" else "dense_vector"
    assert mapping["vector"]["type"] == expected
    assert stack.engine.count(names.read_alias) >= 500


def test_sample_documents_carry_model_version_and_image_flag(stack: Stack):
    hits = stack.engine.search("itest", {"size": 500, "query": {"match_all": {}}, "_source": ["has_image", "model_version"]})
    docs = [h["_source"] for h in hits["hits"]["hits"]]
    assert {d["model_version"] for d in docs} == {"all-MiniLM-L6-v2"}
    assert sum(d["has_image"] for d in docs) >= 400  # the sample has 400 photos


def test_upsert_update_delete(stack: Stack):
    pid = new_id("crud")
    stack.enqueue([upsert(pid, 1, "Linen summer shirt", category="Apparel > Topwear", price=30)])
    stack.drained()
    doc = stack.doc(pid)
    assert doc["_source"]["title"] == "Linen summer shirt" and doc["_version"] == 1

    stack.enqueue([upsert(pid, 2, "Linen summer shirt, sky blue", category="Apparel > Topwear", price=25)])
    stack.drained()
    doc = stack.doc(pid)
    assert doc["_source"]["price"] == 25 and doc["_version"] == 2 and doc["_source"]["event_version"] == 2

    stack.enqueue([{"type": "delete", "product_id": pid, "version": 3}])
    stack.drained()
    doc = stack.doc(pid)
    assert doc["_source"] == {"product_id": pid, "deleted": True, "event_version": 3,
                              "updated_at": doc["_source"]["updated_at"]} and doc["_version"] == 3
    hits = stack.system.searcher.search(SearchRequest("Linen summer shirt sky blue", size=50)).hits
    assert pid not in {hit.product_id for hit in hits}  # a tombstone is in neither leg


def test_a_stale_upsert_after_gc_deletes_does_not_resurrect_a_deleted_product(stack: Stack):
    """The delete's version outlives index.gc_deletes (set to 1 s here): it is a tombstone."""
    index = stack.engine.indices_of_alias("itest")[0]
    stack.engine.update_settings(index, {"gc_deletes": "1s"})
    pid = new_id("zombie")
    stack.enqueue([upsert(pid, 1, "Canvas sneakers"), {"type": "delete", "product_id": pid, "version": 2}])
    stack.drained()
    time.sleep(3)  # past gc_deletes: a hard delete would have forgotten version 2 by now
    stack.enqueue([upsert(pid, 1, "Canvas sneakers (replayed late)")])
    stack.drained()
    assert stack.doc(pid)["_source"].get("deleted") is True
    stack.engine.update_settings(index, {"gc_deletes": "60s"})

    from indexer.indices import purge_tombstones

    assert purge_tombstones(stack.engine, IndexNames("itest"), older_than="1s") >= 1
    assert stack.doc(pid) is None  # past the retention window the tombstone goes


def test_replayed_and_out_of_order_events_never_overwrite_newer(stack: Stack):
    pid = new_id("order")
    newest = upsert(pid, 20, "Wool scarf, charcoal")
    stack.enqueue([newest, upsert(pid, 10, "Wool scarf (old title)")])  # newer first, older after
    stack.drained()
    stack.enqueue([newest, upsert(pid, 19, "Wool scarf (stale replay)")])  # a replay and another stale one
    stack.drained()
    doc = stack.doc(pid)
    assert doc["_version"] == 20 and doc["_source"]["title"] == "Wool scarf, charcoal"
    assert stack.queue.dead_letters() == [] or all(
        d.event.get("product_id") != pid for d in stack.queue.dead_letters()
    )  # stale events are done, not failures


def test_malformed_event_is_parked_then_replayed_after_a_fix(stack: Stack):
    pid = new_id("bad")
    result = stack.enqueue([{"type": "upsert", "product_id": pid, "version": 1, "price": 12}])
    assert result.queued == 0 and len(result.parked) == 1
    letter_id, error = result.parked[0]
    assert "title" in error
    letter = stack.queue.dead_letter(letter_id)
    assert letter.event["product_id"] == pid and letter.stage == "enqueue"

    fixed = {**letter.event, "title": "Canvas tote bag"}
    assert stack.system.producer.replay([letter_id], fixed) == 1
    stack.drained()
    assert stack.doc(pid)["_source"]["title"] == "Canvas tote bag"
    assert all(d.id != letter_id for d in stack.queue.dead_letters())


def test_unreadable_image_is_parked_by_the_worker_and_the_batch_goes_on(stack: Stack):
    bad, good, hostile = new_id("img-bad"), new_id("img-good"), new_id("img-hostile")
    corrupt = SAMPLE / "images" / f"{bad}.jpg"  # inside the image root, where a real upload would be
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    first_photo = sorted((SAMPLE / "images").iterdir())[0]
    try:
        stack.enqueue([upsert(bad, 1, "Leather belt", image=f"images/{corrupt.name}"),
                       upsert(hostile, 1, "Leather gloves", image="../../../../etc/passwd"),
                       upsert(good, 1, "Leather wallet", image=str(first_photo))])
        stack.drained()
    finally:
        corrupt.unlink()
    assert stack.doc(good)["_source"]["has_image"] is True
    assert stack.doc(bad) is None and stack.doc(hostile) is None
    letters = {d.event.get("product_id"): d for d in stack.queue.dead_letters()}
    assert "not a decodable picture" in letters[bad].error and letters[bad].stage == "index"
    assert "outside the image root" in letters[hostile].error and letters[hostile].stage == "index"

    stack.system.producer.replay([letters[bad].id], {**letters[bad].event, "image": str(first_photo)})
    stack.drained()
    assert stack.doc(bad)["_source"]["has_image"] is True
    stack.queue.discard(letters[hostile].id)


def test_engine_outage_parks_events_after_retries(stack: Stack, services: LocalStack):
    """A worker whose engine is down retries with back-off, then parks: nothing vanishes."""
    settings = replace(stack.system.settings, engine_url=f"http://127.0.0.1:{free_port()}",
                       queue_prefix=f"itest-outage-{stack.kind}", ingest_max_retries=1)
    worker = services.start_worker(settings, f"outage-{stack.kind}")
    try:
        system = System(settings)
        pid = new_id("outage")
        system.producer.enqueue([upsert(pid, 1, "Rain jacket")])
        letters = wait_for(lambda: system.queue.dead_letters(), 90, f"the event to be parked (log: {worker.log})")
        assert letters[0].event["product_id"] == pid and letters[0].stage == "engine"
        assert "unreachable" in letters[0].error or "refused" in letters[0].error.lower()
        assert system.queue.pending() == 0 and system.queue.in_flight() == 0
    finally:
        services.stop_worker(worker)


def test_queue_survives_json_round_trip(stack: Stack):
    # What a producer in another language would push: plain JSON with unicode.
    pid = new_id("json")
    event = json.loads(json.dumps(upsert(pid, 1, "Écharpe en laine – rouge", attributes={"material": "wool"})))
    stack.enqueue([event])
    stack.drained()
    assert stack.doc(pid)["_source"]["attributes"] == {"material": "wool"}


def test_a_price_update_keeps_the_stored_vector_and_an_old_index_takes_the_digest(stack: Stack):
    """Both engines give the vector back to the worker's lookup (Elasticsearch 9.2 only when it is
    named), and an index whose mapping predates ``encoded_input`` gets the field added."""
    from es_mappings import DIGEST_FIELD, PRODUCT_FIELDS, IndexLayout, index_body
    from indexer.indices import add_missing_fields
    from indexer.pipeline import Status, index_events
    from tests.unit.test_pipeline import TitleEncoder

    engine, index = stack.engine, new_id("reuse")
    old_fields = {f.name: dict(f.mapping) for f in PRODUCT_FIELDS if f.name != DIGEST_FIELD}
    body = index_body(vector_mapping=engine.vector_mapping(2, quantized=False, graph=IndexLayout().graph),
                      text_analyzer=engine.text_analyzer(), extra_settings=engine.index_settings())
    body["mappings"]["properties"] = {**old_fields, "vector": body["mappings"]["properties"]["vector"]}
    assert engine.create_index(index, body)
    try:
        encoder = TitleEncoder()
        bag = upsert("p1", 1, "Quechua Green Light Backpack", image="images/1565.jpg", price=20)
        refused = index_events([bag], engine=engine, encoder=encoder, index=index, image_root=SAMPLE)
        assert [o.status for o in refused.outcomes] == [Status.REJECTED]  # strict mapping: the field is unknown

        assert add_missing_fields(engine, index) == [DIGEST_FIELD] and add_missing_fields(engine, index) == []
        index_events([bag], engine=engine, encoder=encoder, index=index, image_root=SAMPLE)
        engine.refresh(index)  # the lookup reads what a refresh made visible
        stored = engine.mget(index, ["p1"], source_includes=["vector"])["docs"][0]["_source"]["vector"]
        report = index_events([{**bag, "version": 2, "price": 15}], engine=engine, encoder=encoder, index=index,
                              image_root=SAMPLE)
        assert [o.status for o in report.outcomes] == [Status.INDEXED]
        assert encoder.encoded == ["Quechua Green Light Backpack"] * 2  # the refused write, then the first
        doc = engine.get(index, "p1")
        assert doc["_version"] == 2 and doc["_source"]["price"] == 15
        assert engine.mget(index, ["p1"], source_includes=["vector"])["docs"][0]["_source"]["vector"] == stored
    finally:
        engine.delete_index(index)
