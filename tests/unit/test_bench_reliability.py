"""The fault run's pure parts: the events it sends, the state they imply, and the comparison."""
from __future__ import annotations

from collections import Counter

from bench.reliability import (
    DUPLICATE_SHARE, PRICE_CHANGE_SHARE, bad_events, compare, event_key, expected_state, good_events, markdown, mix,
)
from indexer.events import InvalidEvent, parse_event

BASE = [{"title": "Blue jeans", "category": "Apparel"}, {"title": "Red bag", "image": "1.jpg"}]


def test_good_events_are_valid_disordered_and_partly_duplicated():
    events = good_events(BASE, 1000, seed=3)
    assert len(events) == 1000
    for event in events:
        parse_event(event)
    keys = Counter(event_key(e) for e in events)
    assert sum(n - 1 for n in keys.values()) == int(1000 * DUPLICATE_SHARE)
    assert {e["type"] for e in events} == {"upsert", "delete"}
    # out of order: some product's later event arrives before an earlier one
    last: dict[str, int] = {}
    backwards = 0
    for event in events:
        backwards += event["version"] < last.get(event["product_id"], 0)
        last[event["product_id"]] = max(event["version"], last.get(event["product_id"], 0))
    assert backwards > 10
    assert good_events(BASE, 1000, seed=3) == events  # deterministic


def test_some_updates_change_only_the_price_and_keep_the_title():
    events = sorted((e for e in good_events(BASE, 2000, seed=4) if e["type"] == "upsert"),
                    key=lambda e: (e["product_id"], e["version"]))
    pairs = [(a, b) for a, b in zip(events, events[1:]) if a["product_id"] == b["product_id"]
             and a["version"] != b["version"]]
    kept = [b for a, b in pairs if b["title"] == a["title"]]
    assert abs(len(kept) / len(pairs) - PRICE_CHANGE_SHARE) < 0.05
    # a title names the version it was last changed at, never a later one
    assert all(int(e["title"].rsplit(" v", 1)[1]) <= e["version"] for e in events)


def test_expected_state_is_each_products_newest_event():
    events = [{"type": "upsert", "product_id": "a", "version": 2, "title": "t"},
              {"type": "delete", "product_id": "a", "version": 5},
              {"type": "upsert", "product_id": "a", "version": 4, "title": "t"},
              {"type": "upsert", "product_id": "b", "version": 1, "title": "t"},
              "not an event"]
    assert expected_state(events) == {"a": (5, True), "b": (1, False)}


def test_compare_counts_each_kind_of_difference():
    expected = {"lost": (1, False), "stale": (3, False), "back": (2, True), "ok": (1, False), "gone": (2, True)}
    documents = [{"id": "stale", "version": 2, "deleted": False},
                 {"id": "back", "version": 2, "deleted": False},
                 {"id": "ok", "version": 1, "deleted": False},
                 {"id": "ok", "version": 1, "deleted": False},
                 {"id": "gone", "version": 2, "deleted": True},
                 {"id": "extra", "version": 1, "deleted": False}]
    assert compare(expected, documents) == {"lost": 1, "stale": 1, "resurrected": 1, "duplicated": 1,
                                            "unexpected": 1}


def test_bad_events_fail_on_their_named_field_and_their_corrections_are_valid():
    bad = bad_events(10, "corrupt.jpg")
    assert len({b.field for b in bad}) == 8  # three kinds of image path share "image"
    for b in bad:
        parse_event(b.corrected)
        if b.field == "image":
            assert parse_event(b.raw).image  # refused by the worker, not the schema
            continue
        try:
            parse_event(b.raw)
        except InvalidEvent as exc:
            assert b.field in str(exc)
        else:
            raise AssertionError(f"{b.raw!r} was accepted")


def test_mix_keeps_the_good_order_and_adds_every_bad_event():
    mixed = mix(list(range(100)), ["x", "y", "z"], seed=1)
    assert [e for e in mixed if isinstance(e, int)] == list(range(100))
    assert sorted(e for e in mixed if isinstance(e, str)) == ["x", "y", "z"]


def test_markdown_states_the_machine_the_command_and_every_table():
    payload = {
        "command": "python -m bench.reliability", "commit": "abc", "date": "2026-11-30", "enqueue_retries": 2,
        "machine": {"nproc": 2, "cpu": "EPYC", "memory_gib": 24},
        "events": {"good": 10, "bad": 2, "products": 3},
        "settings": {"workers": 3, "encoder": "minilm", "ingest_max_retries": 8, "stop_s": 20, "seed": 7},
        "phases": [{"phase": "baseline", "events": 6, "fault_s": 0.1, "converge_s": 1.5}],
        "final": {"lost": 0, "stale": 0, "resurrected": 0, "duplicated": 0, "unexpected": 0},
        "vectors": {"checked": 1234, "mismatched": 0},
        "dead_letters": {"bad_parked": 2, "bad_missing": 0, "reason_without_field": 0, "good_parked": 0,
                         "examples": {"price": "upsert.price: not a number"}},
        "replay": {"replayed": 2, "converge_s": 1.0, "dead_letters_left": 0},
        "after_replay": {"lost": 0},
    }
    text = markdown(payload)
    assert "`python -m bench.reliability`" in text and "2 cores (EPYC)" in text
    assert "| baseline | 6 | 0.1 | 1.5 |" in text
    assert "| 0 | 0 | 0 | 0 | 0 |" in text
    assert "each of the 1,234 live documents was encoded again" in text and "; 0 stored vectors differ" in text
    assert "- `price`: upsert.price: not a number" in text
