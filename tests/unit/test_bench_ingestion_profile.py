"""The ingestion profile's bookkeeping: stage clocks and exclusive shares."""
from __future__ import annotations

import types

import pytest

from bench.performance.common import price_update
from bench.performance.ingestion_profile import STAGES, StageClock, ratio_of_medians, stage_shares


def test_shares_take_featurizing_out_of_the_tower_and_leave_the_rest():
    seconds = {"lookup": 0.5, "image read": 1.0, "picture check": 0.25, "encode": 5.0, "featurize": 2.0, "bulk": 1.5}
    shares = stage_shares(seconds, total=10.0)
    assert shares == pytest.approx({"lookup": 0.5, "image read": 1.0, "picture check": 0.25, "featurize": 2.0,
                                    "tower": 5.0 - 2.0, "bulk": 1.5,
                                    "rest": 10.0 - (0.5 + 1.0 + 0.25 + 2.0 + 3.0 + 1.5)})
    assert set(shares) == set(STAGES)
    assert sum(shares.values()) == pytest.approx(10.0)


def test_an_encoder_without_a_featurizer_keeps_featurizing_in_the_tower():
    assert stage_shares({"encode": 4.0}, total=4.0)["tower"] == 4.0


def test_a_patched_call_is_timed_passes_its_result_through_and_is_restored():
    owner = types.SimpleNamespace(work=lambda x: x * 2)
    original = owner.work
    clock = StageClock()
    with clock.patched(owner, "work", "stage"):
        assert owner.work(21) == 42
        assert owner.work is not original
    assert owner.work is original
    assert clock.seconds["stage"] > 0


def test_a_failing_call_is_still_timed():
    def fail() -> None:
        raise ValueError("boom")

    clock = StageClock()
    with pytest.raises(ValueError):
        clock.timed("stage", fail)()
    assert clock.seconds["stage"] > 0


def test_a_price_update_is_the_next_version_with_only_the_price_changed():
    event = {"type": "upsert", "product_id": "p1", "version": 3, "title": "Cap", "image": "images/1.jpg"}
    assert price_update(event) == {**event, "version": 4, "price": 20.0 * 0.9}
    assert price_update({**event, "price": 10.0})["price"] == 9.0


def test_the_update_ratio_pairs_each_repeat_with_itself():
    runs = [{"events_per_s": 100.0, "updates": {"events_per_s": 300.0}},
            {"events_per_s": 50.0, "updates": {"events_per_s": 200.0}},
            {"events_per_s": 200.0, "updates": {"events_per_s": 400.0}}]
    assert ratio_of_medians(runs) == 300.0 / 100.0  # per-repeat ratios 3, 4, 2: median 3
