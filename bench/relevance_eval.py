"""The evaluation half of the relevance benchmark: pure functions over qrels and rankings.

Nothing here talks to an engine, so every number the report prints can be unit-tested on a toy
qrels/run pair. Means come from :func:`acebert.metrics.evaluate_run` (ranx, graded nDCG@10,
grade 2 relevant for recall and MRR); per-query values come from the same ranx metrics, so
confidence intervals and paired tests describe exactly the means in the table.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

from acebert.metrics import CI_METRIC, Qrels, Run, bootstrap_ci, evaluate_run, per_query, positive_grades

Ranking = Sequence[str]
NO_RESULTS = "<no results>"
"""Stands in for an empty result list: ranx cannot score an empty run, yet "found nothing" is
a real outcome that must count as 0, not vanish from the average."""


def to_run(rankings: Mapping[str, Ranking]) -> Run:
    """Ranked id lists as a ranx run whose scores reproduce exactly that order.

    Scores are ``n, n-1, ..., 1`` rather than the engine's own, because blended scores can tie
    and ranx would then break ties its own way, not the way the search module did.
    """
    run: Run = {}
    for qid, ranked in rankings.items():
        run[qid] = {pid: float(len(ranked) - rank) for rank, pid in enumerate(ranked)} or {NO_RESULTS: 0.0}
    return run


def paired_p_value(qrels: Qrels, run_a: Run, run_b: Run, metric: str = CI_METRIC,
                   stat_test: str = "fisher", seed: int = 42) -> float:
    """Two-sided p-value of ranx's paired test between two runs on the same queries.

    ``fisher`` is the randomization (permutation) test IR papers use; ``student`` the paired t-test.
    """
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import compare

    query_ids = sorted(qrels)
    runs = [RanxRun({qid: run[qid] for qid in query_ids}, name=name) for name, run in (("a", run_a), ("b", run_b))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        report = compare(RanxQrels(positive_grades(qrels, query_ids)), runs, [metric], stat_test=stat_test,
                         n_permutations=10_000, random_seed=seed, make_comparable=False)
    return float(report.comparisons[frozenset(("a", "b"))][metric]["p_value"])


@dataclass(frozen=True)
class Scores:
    """One system's numbers on one query set."""

    queries: int
    means: dict[str, float]            # evaluate_run: recall@10, recall@100, mrr@10, ndcg@10
    ndcg_ci: tuple[float, float]       # 95% bootstrap interval of the mean nDCG@10
    per_query_ndcg: dict[str, float]
    slice_queries: int
    slice_ndcg: float | None           # mean nDCG@10 on the colour slice, None if it is empty


def score(qrels: Qrels, run: Run, slice_ids: set[str] | None = None) -> Scores:
    """Means, the nDCG@10 interval, per-query nDCG@10 and the colour-slice mean of one run."""
    means = evaluate_run(qrels, run)
    values = per_query(qrels, run)
    sliced = sorted(set(slice_ids or ()) & set(qrels))
    return Scores(
        queries=len(qrels),
        means=means,
        ndcg_ci=bootstrap_ci(list(values.values())),
        per_query_ndcg=values,
        slice_queries=len(sliced),
        slice_ndcg=evaluate_run(qrels, run, sliced)["ndcg@10"] if sliced else None,
    )


@dataclass(frozen=True)
class Change:
    """How much one query gained (positive) or lost going from a baseline to a system."""

    query_id: str
    baseline: float
    system: float

    @property
    def delta(self) -> float:
        return self.system - self.baseline


def wins_and_losses(
    baseline: Mapping[str, float], system: Mapping[str, float], top: int = 10
) -> tuple[list[Change], list[Change]]:
    """The ``top`` largest per-query gains and losses of ``system`` over ``baseline`` (ties excluded).

    Sorted by size, then query id, so the lists are stable across reruns.
    """
    changes = [Change(qid, baseline[qid], system[qid]) for qid in sorted(baseline)]
    wins = sorted((c for c in changes if c.delta > 0), key=lambda c: (-c.delta, c.query_id))
    losses = sorted((c for c in changes if c.delta < 0), key=lambda c: (c.delta, c.query_id))
    return wins[:top], losses[:top]
