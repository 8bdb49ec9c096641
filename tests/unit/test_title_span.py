"""Title-span matching (issue #11): the spans drawn from catalogue titles, and the batches that mask their
lexical matches. Pure logic on tiny inputs; the loss in a training step is exercised on real catalogue
products in ``tests/unit/test_acebert_training.py``."""
from __future__ import annotations

import random

import pytest
import torch

from acebert.augment import title_span
from acebert.config import ConfigError, build_config
from acebert.pairs import title_span_batch

TITLE = "Puma Men Black Running Shoes"


def test_a_span_is_a_run_of_consecutive_title_words_no_longer_than_asked() -> None:
    words = TITLE.split()
    runs = {" ".join(words[start:start + length]) for length in (1, 2, 3) for start in range(len(words) - length + 1)}
    rng = random.Random(0)
    drawn = [title_span(TITLE, 3, rng) for _ in range(2_000)]
    assert set(drawn) == runs  # every run of 1-3 words, and nothing else: 5 + 4 + 3 = 12 of them
    assert len(runs) == 12


def test_a_span_of_a_short_title_is_at_most_the_title() -> None:
    rng = random.Random(1)
    assert {title_span("Watch", 3, rng) for _ in range(50)} == {"Watch"}
    assert title_span("", 3, rng) == ""


def test_a_span_repeats_with_its_seed() -> None:
    assert [title_span(TITLE, 3, random.Random(5)) for _ in range(3)] == [title_span(TITLE, 3, random.Random(5))] * 3


def test_a_batch_masks_every_product_whose_title_holds_the_span() -> None:
    titles = {"a": "Puma Men Black Shoes", "b": "puma women red shoes", "c": "Nike Blue Tee"}
    batch = None
    for seed in range(200):  # find a draw whose span for "a" is "Puma": it matches "b" too, whatever the case
        candidate = title_span_batch(titles, 3, 1, random.Random(seed))
        if candidate.spans[candidate.product_ids.index("a")] == "Puma":
            batch = candidate
            break
    assert batch is not None
    index = {pid: n for n, pid in enumerate(batch.product_ids)}
    assert batch.excluded[index["a"], index["b"]]
    assert not batch.excluded[index["a"], index["c"]] and not batch.excluded[index["a"], index["a"]]
    for row, span in enumerate(batch.spans):  # each row: masked exactly where another title holds all its words
        span_words = set(span.lower().split())
        expected = [col != row and span_words <= set(titles[pid].lower().split())
                    for col, pid in enumerate(batch.product_ids)]
        assert batch.excluded[row].tolist() == expected
        assert span_words <= set(titles[batch.product_ids[row]].lower().split())  # a span of its own title


def test_a_batch_draws_without_replacement() -> None:
    titles = {f"p{n}": f"Brand{n} Shirt" for n in range(50)}
    batch = title_span_batch(titles, 8, 3, random.Random(3))
    assert len(set(batch.product_ids)) == 8 and batch.excluded.shape == (8, 8)
    assert title_span_batch(titles, 8, 3, random.Random(3)).spans == batch.spans
    assert len(title_span_batch(dict(list(titles.items())[:5]), 8, 3, random.Random(3)).product_ids) == 5
    assert batch.excluded.dtype == torch.bool


@pytest.mark.parametrize(("key", "value"), [("title_span_weight", -0.1), ("title_span_words", 0)])
def test_the_span_settings_are_bounded(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"train.{key}"):
        build_config({"train": {key: value}})
