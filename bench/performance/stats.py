"""Percentiles, summaries over repeated runs, and ratios: the arithmetic every target shares.

Kept free of engines and models so the unit tests can check it on made-up numbers. A machine
shared with other work drifts between runs, so each statistic is taken per run and the report
quotes the median over runs (and the ratio measured within each run), not one pooled sample.
"""
from __future__ import annotations

import statistics
from typing import Mapping, Sequence

import numpy as np

PERCENTILES = (50, 95, 99)


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """``n``, ``mean`` and the ``p50``/``p95``/``p99`` (linear interpolation) of one run's latencies."""
    if not len(samples_ms):
        raise ValueError("no latency samples")
    values = np.asarray(samples_ms, dtype=float)
    summary = {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    return {"n": len(values), "mean": float(values.mean()), **summary}


def median_summary(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The median over runs of each statistic the runs share (e.g. each run's p99)."""
    if not runs:
        raise ValueError("no runs to summarise")
    keys = [key for key in runs[0] if all(key in run for run in runs)]
    return {key: float(statistics.median(run[key] for run in runs)) for key in keys}


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; a zero denominator is a bug in the measurement, so it raises."""
    if denominator == 0:
        raise ZeroDivisionError("ratio with a zero baseline")
    return numerator / denominator


def paired_ratios(
    candidate: Sequence[Mapping[str, float]], baseline: Sequence[Mapping[str, float]], keys: Sequence[str]
) -> dict[str, float]:
    """Per-run ratios ``candidate[key] / baseline[key]``, then their median over runs.

    Pairing the two within a run cancels the drift of a shared machine between runs.
    """
    if len(candidate) != len(baseline) or not candidate:
        raise ValueError("need the same, non-zero number of candidate and baseline runs")
    return {
        key: float(statistics.median(ratio(c[key], b[key]) for c, b in zip(candidate, baseline))) for key in keys
    }


def throughput_summary(rates: Sequence[float]) -> dict[str, float]:
    """Median, min and max of one configuration's rate over repeated runs."""
    if not rates:
        raise ValueError("no throughput samples")
    return {"median": float(statistics.median(rates)), "min": float(min(rates)), "max": float(max(rates)),
            "runs": len(rates)}


def verdict(value: float, limit: float, higher_is_better: bool) -> str:
    """``met`` or ``not met`` for a ratio against its target."""
    met = value >= limit if higher_is_better else value <= limit
    return "met" if met else "not met"
