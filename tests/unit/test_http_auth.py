"""The API's write and operator endpoints need the API key; search and health stay open.

Every refusal here happens before the endpoint touches Redis or an engine, so these run against
a system whose services do not exist (ports nothing listens on).
"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.http import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, create_app
from settings import Settings
from system import System

NOWHERE = {"engine_url": "http://127.0.0.1:9", "redis_url": "redis://127.0.0.1:9/0"}
EVENT = {"type": "upsert", "product_id": "p1", "version": 1, "title": "Red shirt"}
OPERATOR_CALLS = [("post", "/events", [EVENT]), ("get", "/dead-letters", None),
                  ("post", "/dead-letters/abc/replay", None)]


def call(test_client: TestClient, method: str, path: str, body, **kw):
    return test_client.request(method.upper(), path, json=body, **kw) if body is not None else \
        test_client.request(method.upper(), path, **kw)


def client(api_key: str | None) -> TestClient:
    return TestClient(create_app(System(Settings(api_key=api_key, **NOWHERE))), raise_server_exceptions=False)


@pytest.mark.parametrize("method, path, body", OPERATOR_CALLS)
def test_operator_endpoints_refuse_without_the_key(method: str, path: str, body):
    answer = call(client("s3cret"), method, path, body)
    assert answer.status_code == 401 and "X-API-Key" in answer.json()["detail"]


@pytest.mark.parametrize("method, path, body", OPERATOR_CALLS)
def test_operator_endpoints_refuse_a_wrong_key(method: str, path: str, body):
    answer = call(client("s3cret"), method, path, body, headers={"X-API-Key": "guess"})
    assert answer.status_code == 403 and "s3cret" not in answer.text


@pytest.mark.parametrize("method, path, body", OPERATOR_CALLS)
def test_operator_endpoints_are_off_when_no_key_is_configured(method: str, path: str, body):
    answer = call(client(None), method, path, body, headers={"X-API-Key": ""})
    assert answer.status_code == 403 and "set API_KEY" in answer.json()["detail"]


def test_too_many_events_in_one_request_are_refused_before_queueing():
    events = [dict(EVENT, product_id=f"p{i}") for i in range(MAX_EVENTS_PER_REQUEST + 1)]
    answer = client("k").post("/events", json=events, headers={"X-API-Key": "k"})
    assert answer.status_code == 422


def test_an_oversized_body_is_refused_unread():
    answer = client("k").post("/events", content=b"[" + b" " * MAX_BODY_BYTES + b"]",
                              headers={"X-API-Key": "k", "content-type": "application/json"})
    assert answer.status_code == 413


def test_blend_weights_are_bounded():
    answer = client(None).get("/search", params={"q": "shirt", "bm25_weight": 1e9})
    assert answer.status_code == 422


def test_the_key_never_shows_in_settings_repr():
    assert "s3cret" not in repr(Settings(api_key="s3cret"))


def test_search_and_health_need_no_key():
    schema = client(None).get("/openapi.json").json()
    for path in ("/search", "/health"):
        operation = next(iter(schema["paths"][path].values()))
        assert "security" not in operation
    assert "security" in schema["paths"]["/events"]["post"]


def test_a_cursor_page_without_redis_is_a_503_that_hides_the_url():
    answer = client(None).get("/search", params={"cursor": "abcdefghijklmnop:10"})
    assert answer.status_code == 503 and "cursor store" in answer.json()["detail"]
    assert "6379" not in answer.text and "127.0.0.1:9" not in answer.text


def test_a_search_needs_a_query_or_a_cursor():
    assert client(None).get("/search").status_code == 400
    assert client(None).get("/search", params={"cursor": "new"}).status_code == 400
    assert "next_cursor" in client(None).get("/search", params={"cursor": "nocolon"}).json()["detail"]
