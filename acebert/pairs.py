"""Training pairs and batches from the TRAIN judgments.

Positives are grade-2 products only. Grade 1 means "right product type, but a colour, gender
or usage the query did not ask for": using it as a positive would teach the towers to ignore
exactly what the image tokens are there to add. Batches mark it instead (``Batch.partial``) for
the graded loss, which ranks it below the positives and above the rest. Optional hard negatives (``hard_negatives`` per
query per batch) come from one of two pools per query: its grade-1 products (the default), or
the top of a BM25 ranking of the catalogue titles minus its grade-2 products
(:func:`bm25_negative_pools`), the products a lexical engine would wrongly put first.

Queries with hundreds of positives would dominate an epoch, so each epoch draws at most
``max_positives_per_query`` positives per query (a fresh draw every epoch).
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from itertools import islice
from typing import Mapping

import pandas as pd
import torch

from acebert.metrics import Qrels


@dataclass(frozen=True)
class TrainingExamples:
    """What training draws from: query texts, positives and hard-negative pools, restricted to a catalogue."""

    queries: dict[str, str]
    positives: dict[str, tuple[str, ...]]
    negatives: dict[str, tuple[str, ...]]  # per query: the pool hard negatives are drawn from
    partial: dict[str, frozenset[str]]  # per query: its grade-1 products, whatever the negative pool

    @classmethod
    def build(cls, queries: pd.DataFrame, qrels: Qrels, product_ids: set[str]) -> "TrainingExamples":
        """Keep queries that have at least one grade-2 product in ``product_ids``; pools are grade 1."""
        texts = dict(zip(queries["query_id"], queries["query"]))
        positives: dict[str, tuple[str, ...]] = {}
        grade1: dict[str, tuple[str, ...]] = {}
        for qid in sorted(qrels):
            if qid not in texts:
                continue
            judged = qrels[qid]
            pos = tuple(sorted(pid for pid, g in judged.items() if g == 2 and pid in product_ids))
            if pos:
                positives[qid] = pos
                grade1[qid] = tuple(sorted(pid for pid, g in judged.items() if g == 1 and pid in product_ids))
        return cls({qid: texts[qid] for qid in positives}, positives, grade1,
                   {qid: frozenset(pool) for qid, pool in grade1.items()})

    def pairs_per_epoch(self, max_positives_per_query: int | None, max_pairs: int | None) -> int:
        """How many pairs :meth:`epoch_pairs` yields (fixed, so the LR schedule is known up front)."""
        cap = max_positives_per_query or max(map(len, self.positives.values()), default=0)
        total = sum(min(len(pos), cap) for pos in self.positives.values())
        return min(total, max_pairs) if max_pairs else total

    def epoch_pairs(
        self, rng: random.Random, max_positives_per_query: int | None, max_pairs: int | None
    ) -> list[tuple[str, str]]:
        """A shuffled list of ``(query_id, product_id)`` pairs for one epoch."""
        pairs: list[tuple[str, str]] = []
        for qid, pos in self.positives.items():
            chosen = rng.sample(pos, max_positives_per_query) if max_positives_per_query and len(pos) > max_positives_per_query else pos
            pairs.extend((qid, pid) for pid in chosen)
        rng.shuffle(pairs)
        return pairs[:max_pairs] if max_pairs else pairs


def _terms(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25_runs(
    queries: Mapping[str, str], documents: Mapping[str, str], depth: int | None = None
) -> dict[str, list[tuple[str, float]]]:
    """Per query, the products of ``documents`` by Okapi BM25, best first, with their scores.

    Only products with a positive score count (a query that matches nothing gets an empty list);
    ``depth`` keeps the first ones (None: all that match).
    """
    import numpy as np
    from rank_bm25 import BM25Okapi

    ids = list(documents)
    index = BM25Okapi([_terms(documents[pid]) for pid in ids])
    runs: dict[str, list[tuple[str, float]]] = {}
    for qid, text in queries.items():
        scores = index.get_scores(_terms(text))
        ranked = ((ids[i], float(scores[i])) for i in np.argsort(-scores, kind="stable") if scores[i] > 0)
        runs[qid] = list(islice(ranked, depth))
    return runs


def bm25_negative_pools(
    queries: Mapping[str, str], positives: Mapping[str, tuple[str, ...]], titles: Mapping[str, str], depth: int
) -> dict[str, tuple[str, ...]]:
    """Per query, the ``depth`` best BM25 (Okapi, over titles) products that are not its positives.

    Only products with a positive score count: a query that matches no title gets an empty pool
    rather than random products. Grade-1 products stay in: they are the hardest negatives.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    pools: dict[str, tuple[str, ...]] = {}
    for qid, ranked in bm25_runs(queries, titles).items():
        excluded = set(positives.get(qid, ()))
        pools[qid] = tuple(islice((pid for pid, _ in ranked if pid not in excluded), depth))
    return pools


@dataclass(frozen=True)
class Batch:
    """One step's queries and products; ``excluded[i, j]``: product ``j`` is a positive of query ``i``
    other than its own target (masked in the softmax); ``partial[i, j]``: product ``j`` is a grade-1
    product of query ``i`` (for the graded term of :class:`acebert.losses.InBatchContrastive`)."""

    query_ids: list[str]
    product_ids: list[str]  # the B targets first, then the hard negatives
    excluded: torch.Tensor
    partial: torch.Tensor


def make_batches(
    examples: TrainingExamples,
    pairs: list[tuple[str, str]],
    batch_size: int,
    hard_negatives: int,
    rng: random.Random,
) -> list[Batch]:
    """Cut ``pairs`` into batches (a last batch of fewer than 2 pairs is dropped: no negatives)."""
    batches = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        if len(chunk) < 2:
            continue
        query_ids = [qid for qid, _ in chunk]
        product_ids = [pid for _, pid in chunk]
        for qid in query_ids:
            pool = examples.negatives[qid]
            product_ids.extend(rng.sample(pool, min(hard_negatives, len(pool))))
        excluded = torch.zeros((len(chunk), len(product_ids)), dtype=torch.bool)
        partial = torch.zeros_like(excluded)
        for row, qid in enumerate(query_ids):
            relevant, grade1 = set(examples.positives[qid]), examples.partial[qid]
            for col, pid in enumerate(product_ids):
                excluded[row, col] = col != row and pid in relevant
                partial[row, col] = pid in grade1
        batches.append(Batch(query_ids, product_ids, excluded, partial))
    return batches


def in_share(product_id: str, share: float) -> bool:
    """Whether ``product_id`` is in the first ``share`` of a stable hash order of product ids.

    Why a hash: the same products fall in the share on every machine, run and catalogue order, so
    the image-title loss can train on one share and a probe can score the rest, which it never saw.
    """
    position = int.from_bytes(hashlib.sha256(product_id.encode()).digest()[:8], "big") / 2**64
    return position < share


@dataclass(frozen=True)
class TitleBatch:
    """One step of image-title alignment: row ``i``'s title matches column ``i``'s image;
    ``excluded[i, j]``: product ``j`` has the same title as product ``i`` (masked, not a negative)."""

    product_ids: list[str]
    excluded: torch.Tensor


def image_title_batch(titles: Mapping[str, str], size: int, rng: random.Random) -> TitleBatch:
    """``size`` products drawn without replacement from ``titles`` (product id -> title; all when fewer)."""
    product_ids = rng.sample(list(titles), min(size, len(titles)))
    keys = [titles[pid].strip().lower() for pid in product_ids]
    excluded = torch.tensor([[j != i and keys[j] == keys[i] for j in range(len(keys))] for i in range(len(keys))],
                            dtype=torch.bool)
    return TitleBatch(product_ids, excluded)


@dataclass(frozen=True)
class SpanBatch:
    """One step of title-span matching: row ``i``'s span (words of product ``i``'s title) matches column ``i``;
    ``excluded[i, j]``: product ``j``'s title holds every word of span ``i`` too (masked, not a negative)."""

    product_ids: list[str]
    spans: list[str]
    excluded: torch.Tensor


def title_span_batch(titles: Mapping[str, str], size: int, max_words: int, rng: random.Random) -> SpanBatch:
    """``size`` products drawn without replacement from ``titles`` (all when fewer), each with a span of its title
    (:func:`acebert.augment.title_span`). A span such as "Nike" matches every Nike product of the batch, so those
    columns are masked rather than pushed away."""
    from acebert.augment import title_span

    product_ids = rng.sample(list(titles), min(size, len(titles)))
    spans = [title_span(titles[pid], max_words, rng) for pid in product_ids]
    span_words = [set(span.lower().split()) for span in spans]
    title_words = [set(titles[pid].lower().split()) for pid in product_ids]
    excluded = torch.tensor([[j != i and span_words[i] <= title_words[j] for j in range(len(spans))]
                             for i in range(len(spans))], dtype=torch.bool)
    return SpanBatch(product_ids, spans, excluded)
