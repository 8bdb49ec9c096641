"""The fault run's CI configuration: ``python -m bench.reliability --tiny``.

It starts its own OpenSearch node and Redis (it stops and restarts both), three workers, and
sends 300 good and 30 bad events through two worker kills, an engine SIGSTOP, an engine
restart and a Redis restart. The full run (10,000 + 1,000 events) is ``docs/reliability.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench import reliability


def test_the_tiny_fault_run_loses_nothing_and_parks_every_bad_event(tmp_path: Path):
    assert reliability.main(["--tiny", "--results", str(tmp_path)]) == 0  # 1 on any difference
    payload = json.loads((tmp_path / "reliability.json").read_text())
    assert payload["final"] == {"lost": 0, "stale": 0, "resurrected": 0, "duplicated": 0, "unexpected": 0}
    assert payload["vectors"]["mismatched"] == 0 and payload["vectors"]["checked"] > 0  # kept vectors among them
    assert payload["dead_letters"]["bad_parked"] == payload["events"]["bad"] == 30
    assert payload["replay"]["replayed"] == 30 and payload["replay"]["dead_letters_left"] == 0
    kills = [phase for phase in payload["phases"] if "killed" in phase["phase"]]
    assert len(kills) == 2
    assert all(phase["converge_s"] < 15 for phase in kills)  # a dead worker's batch is back within 15 s
    assert "| lost |" in (tmp_path / "reliability.md").read_text()
