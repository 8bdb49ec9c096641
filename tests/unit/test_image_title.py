"""The image-title alignment of issue #11: the stable product share, the batches, and the probe's held-out set.

Pure logic on tiny inputs; the training step itself is exercised on real catalogue products in
``tests/unit/test_acebert_training.py``.
"""
from __future__ import annotations

import random

import pandas as pd
import pytest
import torch

from acebert.config import ConfigError, build_config
from acebert.pairs import image_title_batch, in_share
from bench.probe_colour import held_out


def test_a_share_is_stable_nested_and_about_its_size() -> None:
    ids = [f"p{n}" for n in range(10_000)]
    half = {pid for pid in ids if in_share(pid, 0.5)}
    assert half == {pid for pid in ids if in_share(pid, 0.5)}  # the same answer every time
    assert {pid for pid in ids if in_share(pid, 0.2)} <= half  # a smaller share is inside a larger one
    assert all(in_share(pid, 1.0) for pid in ids)
    # 10,000 fair draws: the count is within 6 standard deviations (sd = sqrt(10000 * 0.5 * 0.5) = 50)
    assert abs(len(half) - 5_000) < 6 * 50


def test_a_batch_masks_products_that_share_a_title() -> None:
    titles = {"a": "Red Shirt", "b": " red shirt", "c": "Blue Jeans"}
    batch = image_title_batch(titles, 3, random.Random(0))
    assert sorted(batch.product_ids) == ["a", "b", "c"]
    index = {pid: n for n, pid in enumerate(batch.product_ids)}
    expected = torch.zeros((3, 3), dtype=torch.bool)
    expected[index["a"], index["b"]] = expected[index["b"], index["a"]] = True  # same title, ignoring case and spaces
    assert torch.equal(batch.excluded, expected)


def test_a_batch_draws_without_replacement_and_repeats_with_its_seed() -> None:
    titles = {f"p{n}": f"title {n}" for n in range(50)}
    first = image_title_batch(titles, 8, random.Random(3))
    assert len(set(first.product_ids)) == 8 and not first.excluded.any()
    assert image_title_batch(titles, 8, random.Random(3)).product_ids == first.product_ids
    assert len(image_title_batch(dict(list(titles.items())[:5]), 8, random.Random(3)).product_ids) == 5


@pytest.mark.parametrize(("key", "value"), [("image_title_weight", -1.0), ("image_title_share", 0.0),
                                            ("image_title_share", 1.5)])
def test_the_alignment_settings_are_bounded(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"train.{key}"):
        build_config({"train": {key: value}})


def test_the_probe_keeps_exactly_the_products_outside_the_share() -> None:
    ids = [f"p{n}" for n in range(200)]
    catalog = pd.DataFrame({"product_id": ids, "title": [f"t{n}" for n in range(200)]})
    events = [{"product_id": pid, "title": title} for pid, title in zip(ids, catalog["title"])]
    kept_catalog, kept_events = held_out(catalog, events, 0.5)
    outside = [pid for pid in ids if not in_share(pid, 0.5)]
    assert list(kept_catalog["product_id"]) == outside == [event["product_id"] for event in kept_events]
    assert list(kept_catalog["title"]) == [event["title"] for event in kept_events]  # rows stay paired
