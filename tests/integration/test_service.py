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
    answer = client.get("/search", params={"q": "shoes", "size": 50, "page": 5, "depth": 100})
    assert answer.status_code == 400 and "candidate window" in answer.json()["detail"]
    assert client.get("/search", params={"q": "shoes", "method": "borda"}).status_code == 422


def test_events_endpoint_parks_malformed_events(client: TestClient, stack: Stack):
    answer = client.post("/events", json=[{"type": "upsert", "product_id": "http-bad", "version": 1}])
    assert answer.status_code == 202
    body = answer.json()
    assert body["queued"] == 0 and "title" in body["parked"][0]["error"]
    stack.queue.discard(body["parked"][0]["id"])


def test_openapi_schema_lists_the_endpoints(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/events", "/dead-letters", "/health"} <= set(paths)


def test_reembed_moves_both_aliases_to_a_new_version(stack: Stack):
    """A model change: re-encode into v2 while v1 serves, then swap; nothing is lost."""
    from es_mappings import LIVE_PRODUCTS, IndexNames
    from indexer.indices import current_versions
    from indexer.reembed import reembed

    names = IndexNames("itest-reembed")
    engine = stack.engine
    from indexer.indices import ensure_index
    from indexer.pipeline import index_events

    ensure_index(engine, names, stack.system.encoder.dimension)
    events = [{"type": "upsert", "product_id": f"re-{i}", "version": 5, "title": f"Cotton socks pack of {i}"}
              for i in range(1, 31)]
    events.append({"type": "delete", "product_id": "re-30", "version": 6})
    index_events(events, engine=engine, encoder=stack.system.encoder, index=names.write_alias)
    engine.refresh(names.read_alias)
    new_index = reembed(engine, names, stack.system.encoder, image_root=stack.system.settings.image_root)
    assert new_index == "itest-reembed-v2"
    assert current_versions(engine, names) == (new_index, new_index)
    assert engine.count(names.read_alias, LIVE_PRODUCTS) == 29
    assert engine.get(names.read_alias, "re-7")["_version"] == 5  # external versions carried over
    deleted = engine.get(names.read_alias, "re-30")  # the delete carried over, at its version
    assert deleted["_source"]["deleted"] is True and deleted["_version"] == 6
    for index in ("itest-reembed-v1", "itest-reembed-v2"):
        engine.delete_index(index)
