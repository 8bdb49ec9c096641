"""The HTTP service and the re-embed path against a real engine."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import Stack


@pytest.fixture
def client(stack: Stack, monkeypatch) -> TestClient:
    import service.http as http

    monkeypatch.setattr(http, "_runtime", stack.runtime)
    return TestClient(http.app)


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
