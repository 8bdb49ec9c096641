"""The shadow evaluation that gates ``hybrid-search rollout``: two encoders, one catalogue, one verdict."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import pytest

from acebert.encoder import ProductInput
from indexer.rollout import shadow_evaluate

WORDS = ["jeans", "handbag", "watch", "sandals", "scarf", "jacket"]


class WordEncoder:
    """One dimension per known word: a query finds exactly the products that share its words."""

    model_version = "words"
    dimension = len(WORDS)

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([[float(word in text.lower().split()) for word in WORDS] for text in texts]) + 1e-6
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._vectors(texts)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        return self._vectors([p.title for p in products])


class LengthEncoder(WordEncoder):
    """Sees only how long a text is: no better than chance at finding the right product."""

    model_version = "length"

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([[np.cos(len(t)), np.sin(len(t)), 0, 0, 0, 0] for t in texts])
        return rows.astype(np.float32)


CATALOG = pd.DataFrame({"product_id": [f"p{i}" for i in range(len(WORDS))],
                        "title": [f"Blue {word} for men" for word in WORDS], "image": [None] * len(WORDS)})
QUERIES = pd.DataFrame({"query_id": [f"q{i}" for i in range(len(WORDS))], "query": WORDS})
QRELS = {f"q{i}": {f"p{i}": 2} for i in range(len(WORDS))} | {"q-unknown": {"p-gone": 2}}


def test_a_better_candidate_passes_and_a_worse_one_is_flagged():
    better = shadow_evaluate(LengthEncoder(), WordEncoder(), CATALOG, QUERIES, QRELS, progress=False)
    assert (better.queries, better.products) == (6, 6)  # the query judged on a missing product is left out
    assert better.candidate == pytest.approx(1.0) and better.current < 1.0
    assert not better.worse and better.difference_ci[0] <= better.difference <= better.difference_ci[1]
    worse = shadow_evaluate(WordEncoder(), LengthEncoder(), CATALOG, QUERIES, QRELS, progress=False)
    assert worse.worse and worse.difference == pytest.approx(-better.difference)
    assert "served words 1.0000, candidate length" in worse.summary()


def test_judgments_that_match_no_product_are_an_error_that_says_so():
    with pytest.raises(ValueError, match="product ids match products.csv"):
        shadow_evaluate(WordEncoder(), WordEncoder(), CATALOG, QUERIES, {"q0": {"other": 2}}, progress=False)
