"""Roll a new model out: shadow-evaluate it against the served one on the user's judgments first.

The shadow evaluation ranks the user's catalogue for their judged queries with both models, by
exact cosine search over vectors computed here (the candidate's vectors cannot be in the index
yet, so the served model gets the same treatment), and compares mean nDCG@10 with a paired
bootstrap interval over queries. A candidate with a lower mean is refused unless forced; an
accepted one goes live through :func:`indexer.reembed.reembed`, while events keep arriving.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from acebert.encoder import Encoder
from acebert.evaluate import encode_catalog, judged_queries, search
from acebert.metrics import Qrels, bootstrap_ci, per_query


@dataclass(frozen=True)
class ShadowReport:
    """Mean nDCG@10 of the served and the candidate model on the same queries and catalogue."""

    queries: int
    products: int
    current_model: str
    candidate_model: str
    current: float
    candidate: float
    difference_ci: tuple[float, float]  # paired 95% bootstrap interval of candidate - current
    # the candidate's exact top 100 per query, (product id, cosine): the dense leg a blend weight is chosen on
    candidate_legs: dict[str, list[tuple[str, float]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def difference(self) -> float:
        return self.candidate - self.current

    @property
    def worse(self) -> bool:
        return self.difference < 0

    def summary(self) -> str:
        low, high = self.difference_ci
        return (f"nDCG@10 on {self.queries} judged queries over {self.products} products: "
                f"served {self.current_model} {self.current:.4f}, candidate {self.candidate_model} "
                f"{self.candidate:.4f} ({self.difference:+.4f}, 95% CI {low:+.4f} to {high:+.4f})")


def shadow_evaluate(
    current: Encoder, candidate: Encoder, catalog: pd.DataFrame, queries: pd.DataFrame, qrels: Qrels,
    progress: bool = True,
) -> ShadowReport:
    """Compare two encoders on ``queries``/``qrels`` over ``catalog`` (see the module docstring)."""
    product_ids = list(catalog["product_id"])
    queries, qrels = judged_queries(queries, qrels, product_ids)
    if queries.empty:
        raise ValueError("no judged query has a grade-2 product in this catalogue: do the judgments' product "
                         "ids match products.csv?")
    qrels = {qid: qrels[qid] for qid in queries["query_id"]}
    scores: list[dict[str, float]] = []
    for encoder in (current, candidate):
        product_vectors = encode_catalog(encoder, catalog, progress=progress)
        query_vectors = encoder.encode_queries(list(queries["query"]))
        run = dict(zip(queries["query_id"], search(query_vectors, product_vectors, product_ids)))
        scores.append(per_query(qrels, run))
    ids = sorted(qrels)
    before, after = (np.array([s[qid] for qid in ids]) for s in scores)
    return ShadowReport(len(ids), len(product_ids), current.model_version, candidate.model_version,
                        float(before.mean()), float(after.mean()), bootstrap_ci(after - before),
                        {qid: list(ranked.items()) for qid, ranked in run.items()})
