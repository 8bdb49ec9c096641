"""The write path on real engines, Redis and Celery workers: events in, documents out."""
from __future__ import annotations

import json
import uuid

import pytest

from devstack.worker import start_worker
from es_mappings import IndexNames
from indexer.indices import current_versions
from tests.integration.conftest import SAMPLE, Stack, wait_for, worker_env


def new_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def upsert(pid: str, version: int, title: str, **fields) -> dict:
    return {"type": "upsert", "product_id": pid, "version": version, "title": title, **fields}


def test_index_version_and_aliases(stack: Stack):
    names = IndexNames("itest")
    read, write = current_versions(stack.engine, names)
    assert read == write == "itest-v1"
    mapping = stack.engine.request("GET", "/itest-v1/_mapping")["itest-v1"]["mappings"]["properties"]
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
    assert stack.doc(pid) is None


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

    from workers.producer import replay

    fixed = {**letter.event, "title": "Canvas tote bag"}
    assert replay(stack.queue, [letter_id], fixed) == 1
    stack.drained()
    assert stack.doc(pid)["_source"]["title"] == "Canvas tote bag"
    assert all(d.id != letter_id for d in stack.queue.dead_letters())


def test_unreadable_image_is_parked_by_the_worker_and_the_batch_goes_on(stack: Stack, tmp_path):
    bad, good = new_id("img-bad"), new_id("img-good")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    corrupt.chmod(0o644)
    first_photo = sorted((SAMPLE / "images").iterdir())[0]
    stack.enqueue([upsert(bad, 1, "Leather belt", image=str(corrupt)),
                   upsert(good, 1, "Leather wallet", image=str(first_photo))])
    stack.drained()
    assert stack.doc(good)["_source"]["has_image"] is True
    assert stack.doc(bad) is None
    letters = [d for d in stack.queue.dead_letters() if d.event.get("product_id") == bad]
    assert len(letters) == 1 and "not a decodable picture" in letters[0].error and letters[0].stage == "index"

    from workers.producer import replay

    replay(stack.queue, [letters[0].id], {**letters[0].event, "image": str(first_photo)})
    stack.drained()
    assert stack.doc(bad)["_source"]["has_image"] is True


def test_engine_outage_parks_events_after_retries(stack: Stack, stack_dir):
    """A worker whose engine is down retries with back-off, then parks: nothing vanishes."""
    from dataclasses import replace

    from service.runtime import Runtime
    from tests.integration.conftest import free_port
    from workers.producer import enqueue

    settings = replace(stack.runtime.settings, engine_url=f"http://127.0.0.1:{free_port()}",
                       queue_prefix=f"itest-outage-{stack.kind}")
    worker = start_worker(worker_env(settings, INGEST_MAX_RETRIES="1"), f"outage-{stack.kind}",
                          stack_dir / f"worker-outage-{stack.kind}.log")
    try:
        runtime = Runtime(settings)
        pid = new_id("outage")
        enqueue([upsert(pid, 1, "Rain jacket")], runtime.queue, batch_size=8)
        letters = wait_for(lambda: runtime.queue.dead_letters(), 90, f"the event to be parked (log: {worker.log})")
        assert letters[0].event["product_id"] == pid and letters[0].stage == "engine"
        assert "unreachable" in letters[0].error or "refused" in letters[0].error.lower()
        assert runtime.queue.pending() == 0 and runtime.queue.in_flight() == 0
    finally:
        worker.stop()


def test_queue_survives_json_round_trip(stack: Stack):
    # What a producer in another language would push: plain JSON with unicode.
    pid = new_id("json")
    event = json.loads(json.dumps(upsert(pid, 1, "Écharpe en laine – rouge", attributes={"material": "wool"})))
    stack.enqueue([event])
    stack.drained()
    assert stack.doc(pid)["_source"]["attributes"] == {"material": "wool"}


def test_a_worker_killed_mid_batch_loses_nothing(stack: Stack, stack_dir):
    """kill -9 a worker while it holds a batch: its task is redelivered and the batch indexed."""
    if stack.kind != "opensearch":
        pytest.skip("the queue and worker behaviour is engine-independent; run once")
    from dataclasses import replace

    from service.runtime import Runtime
    from workers.producer import enqueue

    settings = replace(stack.runtime.settings, queue_prefix="itest-crash", batch_size=16)
    env = worker_env(settings, INGEST_VISIBILITY_TIMEOUT="8")
    runtime = Runtime(settings)
    tag = new_id("crash")
    events = [upsert(f"{tag}-{i}", 1, f"Crash test tee number {i}") for i in range(200)]
    first = start_worker(env, "crash-a", stack_dir / "worker-crash-a.log")
    second = None
    try:
        enqueue(events, runtime.queue, batch_size=16)
        ids_query = {"prefix": {"product_id": tag}}
        wait_for(lambda: runtime.queue.in_flight() > 0, 120, "the worker to claim a batch")
        first.kill()
        assert runtime.queue.in_flight() > 0 or runtime.queue.pending() > 0  # work was cut off
        second = start_worker(env, "crash-b", stack_dir / "worker-crash-b.log")

        def all_indexed() -> bool:
            stack.engine.refresh("itest")
            return stack.engine.count("itest", ids_query) == len(events)

        wait_for(all_indexed, 180, f"every event after the crash (log: {second.log})")
        wait_for(lambda: runtime.queue.in_flight() == 0 and runtime.queue.pending() == 0, 60, "an empty queue")
        assert runtime.queue.dead_letters() == []
    finally:
        first.kill()
        if second:
            second.stop()
