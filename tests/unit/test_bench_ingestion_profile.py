"""The ingestion profile's bookkeeping: stage clocks and exclusive shares."""
from __future__ import annotations

import types

import pytest

from bench.performance.ingestion_profile import STAGES, StageClock, stage_shares


def test_shares_take_featurizing_out_of_the_tower_and_leave_the_rest():
    seconds = {"image read": 1.0, "encode": 5.0, "featurize": 2.0, "bulk": 1.5}
    shares = stage_shares(seconds, total=10.0)
    assert shares == pytest.approx({"image read": 1.0, "featurize": 2.0, "tower": 5.0 - 2.0, "bulk": 1.5,
                                    "rest": 10.0 - (1.0 + 2.0 + 3.0 + 1.5)})
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
