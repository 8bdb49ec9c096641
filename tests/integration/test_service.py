"""The HTTP service and the re-embed path against a real engine."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import Stack


API_KEY = "itest-key"


@pytest.fixture
def client(stack: Stack) -> TestClient:
    from dataclasses import replace

    from service.http import create_app
    from system import System

    client = TestClient(create_app(System(replace(stack.system.settings, api_key=API_KEY))))
    client.headers["X-API-Key"] = API_KEY
    return client


def test_search_endpoint_returns_explained_hits(client: TestClient):
    answer = client.get("/search", params={"q": "black watch", "size": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["hits"]) == 5 and body["mode"] == "hybrid"
    assert all(set(h["ranks"]) <= {"bm25", "knn"} and h["ranks"] for h in body["hits"])


def test_bad_request_gets_a_clear_400(client: TestClient):
    answer = client.get("/search", params={"q": "shoes", "size": 100, "page": 11})
    assert answer.status_code == 400 and "deepest window" in answer.json()["detail"]
    assert client.get("/search", params={"q": "shoes", "method": "borda"}).status_code == 422


def test_events_endpoint_parks_malformed_events(client: TestClient, stack: Stack):
    answer = client.post("/events", json=[{"type": "upsert", "product_id": "http-bad", "version": 1}])
    assert answer.status_code == 202
    body = answer.json()
    assert body["queued"] == 0 and "title" in body["parked"][0]["error"]
    stack.queue.discard(body["parked"][0]["id"])


def test_search_refuses_an_index_whose_model_its_encoder_no_longer_loads(stack: Stack):
    """An index filled by one model, whose recorded spec now loads another (a checkpoint retrained in
    place), answers 503 with what to do instead of searching its vectors with the wrong query tower;
    BM25, which reads no vectors, still answers."""
    from dataclasses import replace

    from indexer.indices import ensure_index
    from indexer.models import model_meta
    from service.http import create_app
    from system import System

    system = System(replace(stack.system.settings, index_prefix="itest-mismatch"))
    ensure_index(stack.engine, system.names, system.encoder.dimension, system.layout,
                 model_meta(system.settings.encoder, "acebert-filled-by-an-older-training"))
    client = TestClient(create_app(system))
    for mode in ("hybrid", "knn", "server_hybrid"):
        answer = client.get("/search", params={"q": "black watch", "mode": mode})
        assert answer.status_code == 503, mode
        detail = answer.json()["detail"]
        assert "holds vectors of model acebert-filled-by-an-older-training" in detail
        assert "hybrid-search reembed" in detail and "mode=bm25 still answers" in detail
    bm25 = client.get("/search", params={"q": "black watch", "mode": "bm25"})
    assert bm25.status_code == 200 and bm25.json()["mode"] == "bm25"


def test_openapi_schema_lists_the_endpoints(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/events", "/dead-letters", "/health"} <= set(paths)


def test_an_interrupted_reembed_resumes_and_rollback_brings_the_old_version_up_to_date(stack: Stack):
    """A switch that stopped after moving writes (a crash) is finished by the next ``reembed``:
    live writes made meanwhile win over older backfilled copies, deletes carry over at their
    versions. ``rollback`` then moves back to v1 and brings it up to date first."""
    from es_mappings import LIVE_PRODUCTS, IndexNames
    from indexer.indices import create_version, current_versions, ensure_index
    from indexer.models import IndexModels, model_meta
    from indexer.pipeline import index_events
    from indexer.reembed import reembed, rollback

    names = IndexNames("itest-reembed")
    engine, encoder = stack.engine, stack.system.encoder
    models = IndexModels(engine, names, lambda spec: encoder, "minilm")
    meta = model_meta("minilm", encoder.model_version)
    ensure_index(engine, names, encoder.dimension, meta=meta)
    events = [{"type": "upsert", "product_id": f"re-{i}", "version": 5, "title": f"Cotton socks pack of {i}"}
              for i in range(1, 31)]
    events.append({"type": "delete", "product_id": "re-30", "version": 6})
    index_events(events, engine=engine, encoder=encoder, index=names.write_alias)

    # The crash: v2 exists and takes the writes, but was never filled and reads still use v1.
    v2 = create_version(engine, names, 2, encoder.dimension, stack.system.layout, meta)
    engine.update_aliases([{"remove": {"index": "itest-reembed-v1", "alias": names.write_alias}},
                           {"add": {"index": v2, "alias": names.write_alias, "is_write_index": True}}])
    live = [{"type": "upsert", "product_id": "re-3", "version": 7, "title": "Wool socks"},
            {"type": "delete", "product_id": "re-4", "version": 8}]
    index_events(live, engine=engine, encoder=encoder, index=names.write_alias)

    def state(index: str) -> dict[str, tuple[int, bool]]:
        engine.refresh(index)
        hits = engine.search(index, {"size": 100, "version": True, "_source": ["deleted"]})["hits"]["hits"]
        return {h["_id"]: (h["_version"], bool(h["_source"].get("deleted"))) for h in hits}

    expected = {f"re-{i}": (5, False) for i in range(1, 30)} | {"re-30": (6, True), "re-3": (7, False),
                                                                 "re-4": (8, True)}
    report = reembed(engine, names, models, "minilm", image_root=stack.system.settings.image_root, settle_s=0)
    assert (report.source, report.target) == ("itest-reembed-v1", v2)
    assert report.backfilled == 28 and report.skipped == 2  # re-3 and re-4 were already newer in v2
    assert current_versions(engine, names) == (v2, v2)
    assert state(v2) == expected
    assert engine.count(names.read_alias, LIVE_PRODUCTS) == 28

    index_events([{"type": "upsert", "product_id": "re-5", "version": 9, "title": "Silk socks"}],
                 engine=engine, encoder=encoder, index=names.write_alias)
    back = rollback(engine, names, models, image_root=stack.system.settings.image_root, settle_s=0)
    assert (back.source, back.target) == (v2, "itest-reembed-v1")
    assert back.backfilled == 3  # only what v1 lacked: re-3, re-4 and re-5
    assert current_versions(engine, names) == ("itest-reembed-v1", "itest-reembed-v1")
    assert state("itest-reembed-v1") == expected | {"re-5": (9, False)}
    for index in ("itest-reembed-v1", "itest-reembed-v2"):
        engine.delete_index(index)
