"""The BM25 weight a trained model's hybrid is served with, chosen on judged queries it never saw.

Why per model: the best blend depends on how good the dense leg is. On the fashion dev split
(``docs/relevance.md``) the untrained MiniLM wants BM25 at 0.6-0.7, while a trained ACE-BERT
wants it at 0.1, and the one fixed default of 0.5 cost the trained model 0.05-0.09 nDCG@10 there.
So ``hybrid-search train`` picks the weight on its held-out queries and writes it next to the
model (:data:`BLEND_FILE`); the searcher uses it for an index that model encoded, unless a request
names its own weights. A rollback to an older index brings that index's model, and its weight, back.

The BM25 leg here is Okapi BM25 over each product's title and category, computed in process
(training needs no engine), standing in for the engine's multi-field BM25; min-max
normalisation per query makes the two legs' scales irrelevant to the blend, so the weight
transfers. The dense leg is the model's exact cosine top ``DEPTH``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # the serving install reads blend files without the evaluation stack
    import pandas as pd

    from acebert.metrics import Qrels

BLEND_FILE = "blend.json"
METHOD = "min_max"
"""The blend the choice is made for: the searcher's default method."""
WEIGHT_GRID: tuple[float, ...] = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""BM25 weights tried (kNN gets 1 - w); the relevance bench sweeps the same grid."""
DEPTH = 100
"""Candidates per leg, as the searcher's default ``depth``."""

Leg = Sequence[tuple[str, float]]


def best_setting(scores: Mapping[float, float]) -> float:
    """The setting (e.g. a BM25 weight) with the highest score; the first one on a tie.

    Ties go to the first setting in the caller's order, so the choice never depends on dict
    hashing and a rerun picks the same weight.
    """
    if not scores:
        raise ValueError("no settings to choose from")
    return max(scores, key=lambda setting: scores[setting])


@dataclass(frozen=True)
class BlendChoice:
    """The chosen BM25 weight and the held-out nDCG@10 of every weight tried."""

    bm25_weight: float
    ndcg_by_weight: dict[float, float]
    queries: int
    method: str = METHOD

    @property
    def weights(self) -> dict[str, float]:
        from query_rewriter.blend import leg_weights

        return leg_weights(self.bm25_weight)

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "weights": self.weights, "queries": self.queries,
                "ndcg@10_by_bm25_weight": {str(w): round(v, 4) for w, v in self.ndcg_by_weight.items()},
                "bm25_leg": "Okapi BM25 over title and category, in process"}

    def write(self, checkpoint: Path) -> Path:
        path = Path(checkpoint) / BLEND_FILE
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        return path


def choose_bm25_weight(
    bm25: Mapping[str, Leg], dense: Mapping[str, Leg], qrels: Qrels, grid: Sequence[float] = WEIGHT_GRID,
) -> BlendChoice:
    """The grid weight whose min-max blend of the two legs has the best mean nDCG@10 over ``qrels``' queries.

    A query missing from a leg (BM25 matched nothing) blends the other leg alone, as the searcher does.
    """
    import numpy as np

    from acebert.metrics import per_query
    from query_rewriter.blend import blend, leg_weights

    query_ids = sorted(qrels)
    curve = {}
    for weight in grid:
        run = {}
        for qid in query_ids:
            fused = blend({"bm25": list(bm25.get(qid, ())), "knn": list(dense.get(qid, ()))},
                          leg_weights(weight), METHOD)[:DEPTH]
            run[qid] = {item.doc_id: float(len(fused) - rank) for rank, item in enumerate(fused)}
        curve[weight] = float(np.mean(list(per_query(qrels, run).values())))
    return BlendChoice(best_setting(curve), curve, len(query_ids))


def choose_on_catalog(
    catalog: "pd.DataFrame", queries: Mapping[str, str], qrels: Qrels, dense: Mapping[str, Leg],
) -> BlendChoice:
    """:func:`choose_bm25_weight` with the BM25 leg computed here: Okapi BM25 over each catalogue
    product's title and category, for the queries ``dense`` (the model's exact top :data:`DEPTH`) answers.

    ``queries`` maps query id to text; ``qrels`` are the judgments of those queries.
    """
    from acebert.pairs import bm25_runs

    categories = catalog["category"].fillna("") if "category" in catalog else [""] * len(catalog)
    documents = {pid: f"{title} {category}" for pid, title, category in
                 zip(catalog["product_id"], catalog["title"], categories)}
    bm25 = bm25_runs({qid: queries[qid] for qid in dense}, documents, DEPTH)
    return choose_bm25_weight(bm25, dense, {qid: qrels[qid] for qid in dense})


def read_blend(checkpoint: Path) -> dict[str, float] | None:
    """The weights in ``checkpoint``'s :data:`BLEND_FILE`, or None when it has none (then the searcher's default)."""
    path = Path(checkpoint) / BLEND_FILE
    if not path.is_file():
        return None
    try:
        weights = {str(leg): float(w) for leg, w in json.loads(path.read_text())["weights"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a blend file ({exc}); delete it to serve with the default weights, or "
                         "retrain with `hybrid-search train`") from None
    if set(weights) != {"bm25", "knn"} or not all(0.0 <= w <= 1.0 for w in weights.values()):
        raise ValueError(f"{path}: weights must be bm25 and knn, each between 0 and 1, not {weights}")
    return weights
