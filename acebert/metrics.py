"""Retrieval metrics and the modality gap, as plain functions over plain data.

``qrels`` is ``{query_id: {product_id: grade}}`` and ``run`` is ``{query_id: {product_id:
score}}``, the shapes ranx takes, so benchmarks can call these on any system's output.
Relevance for the binary metrics is grade 2 ("matches everything the query asks"); grade 1
(right type, a wrong attribute) is not a hit. nDCG uses the grades as gains (ranx ``ndcg``:
gain = grade, so a grade-1 product earns half a grade-2 one).
"""
from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np

# our name -> ranx metric string ("-l2": a document counts as relevant from grade 2 up)
METRICS: dict[str, str] = {
    "recall@10": "recall@10-l2",
    "recall@100": "recall@100-l2",
    "mrr@10": "mrr@10-l2",
    "ndcg@10": "ndcg@10",
}

CI_METRIC = "ndcg@10"  # the per-query metric behind confidence intervals and paired tests (a ranx name)

# The shapes of judgments and results wherever acebert and the benchmarks pass them around.
Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def evaluate_run(qrels: Qrels, run: Run, query_ids: Iterable[str] | None = None) -> dict[str, float]:
    """Mean recall@10, recall@100, mrr@10 (grade 2 relevant) and graded nDCG@10 over the queries.

    ``query_ids`` restricts the average to a slice (default: every query in ``qrels``). Every
    selected query must be in ``run`` (an empty result still needs its key): a query silently
    dropped would inflate the averages.
    """
    from ranx import evaluate

    selected = sorted(set(query_ids) if query_ids is not None else set(qrels))
    if not selected:
        raise ValueError("no queries to evaluate")
    unknown = [qid for qid in selected if qid not in qrels]
    missing = [qid for qid in selected if qid not in run]
    if unknown or missing:
        raise ValueError(f"queries without judgments: {unknown[:5]}; queries without results: {missing[:5]}")
    empty = [qid for qid in selected if not run[qid]]
    if empty:
        raise ValueError(f"queries with an empty result list (ranx cannot score them): {empty[:5]}")
    sub_qrels = {qid: {pid: int(g) for pid, g in qrels[qid].items() if g > 0} for qid in selected}
    sub_run = {qid: {pid: float(s) for pid, s in run[qid].items()} for qid in selected}
    with warnings.catch_warnings():
        # ranx's numba sort casts uint64 -> int64 on every call; the values are small ids
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        scores = evaluate(sub_qrels, sub_run, list(METRICS.values()), make_comparable=False)
    return {name: float(scores[ranx_name]) for name, ranx_name in METRICS.items()}


def modality_gap(query_vectors: np.ndarray, product_vectors: np.ndarray) -> float:
    """Euclidean distance between the mean query vector and the mean product vector.

    The "modality gap" of Liang et al. (2022): with L2-normalised vectors it is 0 when the two
    clouds are centred on each other and up to 2 when they sit at opposite poles.
    """
    if len(query_vectors) == 0 or len(product_vectors) == 0:
        raise ValueError("modality_gap needs at least one query and one product vector")
    return float(np.linalg.norm(query_vectors.mean(0) - product_vectors.mean(0)))


def positive_grades(qrels: Qrels, query_ids: Iterable[str]) -> Qrels:
    """Only positive grades, as :func:`evaluate_run` passes them to ranx, so per-query values match its means."""
    return {qid: {pid: int(g) for pid, g in qrels[qid].items() if g > 0} for qid in query_ids}


def per_query(qrels: Qrels, run: Run, metric: str = CI_METRIC) -> dict[str, float]:
    """``{query_id: value}`` of one ranx metric for every judged query (ranx names, e.g. ``ndcg@10``).

    A query with an empty result list scores 0 (ranx cannot take an empty list; a search engine
    can return one); a judged query missing from ``run`` is an error, as in :func:`evaluate_run`.
    """
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate

    missing = [qid for qid in sorted(qrels) if qid not in run]
    if missing:
        raise ValueError(f"queries without results: {missing[:5]}")
    query_ids = sorted(qid for qid in qrels if run[qid])
    values: dict[str, float] = {}
    if query_ids:
        ranx_run = RanxRun({qid: run[qid] for qid in query_ids})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
            evaluate(RanxQrels(positive_grades(qrels, query_ids)), ranx_run, [metric], make_comparable=False)
        values = {qid: float(value) for qid, value in ranx_run.scores[metric].items()}
    return {qid: values.get(qid, 0.0) for qid in sorted(qrels)}


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling queries with replacement.

    Queries, not documents, are the sampling unit: the question is how much the mean would move
    with another draw of queries like these. Pass per-query *differences* of two systems to get a
    paired interval for the difference. The seed is fixed so a rerun prints the same interval.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def permutation_p_value(differences: Sequence[float], permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of a mean per-query difference.

    Under "no difference" each query's difference is as likely negative as positive, so the
    observed mean is compared with the means of randomly sign-flipped differences (the Fisher
    test IR papers use; ranx runs the same test on two runs). ``(hits + 1) / (permutations + 1)``
    keeps the p-value above 0 for a finite number of permutations. The seed is fixed.
    """
    data = np.asarray(differences, dtype=float)
    if data.size == 0:
        raise ValueError("permutation_p_value needs at least one difference")
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(permutations, data.size))
    flipped = np.abs((signs * data).mean(axis=1))
    hits = int((flipped >= abs(data.mean()) - 1e-12).sum())
    return (hits + 1) / (permutations + 1)
