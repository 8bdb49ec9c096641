"""Title dropout during training and the category input of the product tower (issue #11).

Inputs are tiny and the random draws are either forced (:class:`Draws`) or printed in a comment,
so every expected value can be checked by hand. Featurisation uses the real MiniLM tokenizer.
"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from acebert.augment import augment_products, drop_title_words
from acebert.checkpoint_layout import load_tokenizer
from acebert.config import ConfigError, ModelConfig, RunConfig, build_config
from acebert.data import catalog_inputs
from acebert.encoder import ProductInput
from acebert.features import Featurizer
from acebert.minilm import base_model_path
from acebert.model import ImageTokens, _image_part
from acebert.train import check_same_run
from indexer.documents import encoder_input
from indexer.events import ProductUpsert

CLS, SEP = 101, 102  # the MiniLM vocabulary's [CLS] and [SEP]


class Draws(random.Random):
    """An RNG whose ``random()`` returns the given values in turn (and fails if asked for more)."""

    def __init__(self, values: Sequence[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), (200, 20, 20)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return load_tokenizer(base_model_path())


def _tokens(featurizer: Featurizer, product: ProductInput, tokenizer) -> list[str]:  # type: ignore[no-untyped-def]
    """The product's token strings as the tower reads them (no padding: one product)."""
    return [tokenizer.id_to_token(i) for i in featurizer.products([product]).input_ids[0]]


# -- title word dropout -------------------------------------------------------------------
def test_probability_zero_is_the_identity_and_draws_nothing() -> None:
    products = [ProductInput("Blue  denim jacket", image=b"jpeg", category="Apparel"), ProductInput("red dress")]
    rng = random.Random(0)
    state = rng.getstate()
    assert augment_products(products, rng, 0.0, 0.0, lambda p: True) == products
    assert drop_title_words("Blue  denim jacket", 0.0, rng) == "Blue  denim jacket"  # spacing kept too
    assert rng.getstate() == state  # a run without augmentation draws its batches as before


def test_each_word_is_dropped_when_its_draw_is_below_p() -> None:
    # random.Random(0) draws 0.844, 0.758, 0.421, 0.259, 0.511: words 3 and 4 fall below 0.5
    assert drop_title_words("a b c d e", 0.5, random.Random(0)) == "a b e"
    assert drop_title_words("red cotton shirt", 0.5, Draws([0.9, 0.1, 0.5])) == "red shirt"


def test_the_same_seed_gives_the_same_augmented_titles() -> None:
    products = [ProductInput(f"w{i} x{i} y{i} z{i}", image=b"jpeg" if i % 2 else None) for i in range(20)]

    def titles(seed: int) -> list[str]:
        return [p.title for p in augment_products(products, random.Random(seed), 0.3, 0.3, lambda p: p.image is not None)]

    assert titles(5) == titles(5)
    assert titles(5) != titles(6)
    assert titles(5) != [p.title for p in products]


def test_a_dropped_word_is_absent_from_the_featurised_product(tokenizer) -> None:  # type: ignore[no-untyped-def]
    featurizer = Featurizer(tokenizer, ModelConfig())
    product = ProductInput("red cotton shirt")
    [augmented] = augment_products([product], Draws([0.9, 0.1, 0.9]), 0.5, 0.0, featurizer.uses_image)
    cotton = tokenizer.token_to_id("cotton")
    assert cotton in featurizer.products([product]).input_ids[0]
    assert _tokens(featurizer, augmented, tokenizer) == ["[CLS]", "red", "shirt", "[SEP]"]


# -- whole-title dropout ------------------------------------------------------------------
def test_a_dropped_title_leaves_the_image_tokens(tokenizer) -> None:  # type: ignore[no-untyped-def]
    config = ModelConfig()
    featurizer = Featurizer(tokenizer, config)
    product = ProductInput("red cotton shirt", image=_jpeg(), category="Apparel > Topwear")
    [augmented] = augment_products([product], Draws([0.2]), 0.5, 0.5, featurizer.uses_image)
    assert augmented == ProductInput("", image=product.image, category=product.category)  # no word draws either

    batch = featurizer.products([augmented])
    assert batch.input_ids.tolist() == [[CLS, SEP]] and batch.attention_mask.tolist() == [[1, 1]]
    assert batch.has_image.tolist() == [True] and np.abs(batch.images).sum() > 0
    assert featurizer.product_lengths([augmented]).tolist() == [2 + config.n_image_tokens]  # 2 + 12 + 8
    _, image_mask = _image_part(ImageTokens(config, hidden=8), torch.from_numpy(batch.images),
                                torch.from_numpy(batch.has_image), torch.float32)
    assert image_mask.tolist() == [[1] * config.n_image_tokens]  # every image token is attended


def test_a_product_without_a_usable_image_keeps_its_title(tokenizer) -> None:  # type: ignore[no-untyped-def]
    title_only = Featurizer(tokenizer, ModelConfig(use_image=False))
    products = [ProductInput("red shirt"), ProductInput("blue jeans", image=_jpeg())]  # the model ignores images
    # no draw is made for them: Draws([]) would fail on one; a draw of 0.0 would drop any title
    assert augment_products(products, Draws([]), 0.0, 0.99, title_only.uses_image) == products
    with_image = Featurizer(tokenizer, ModelConfig())
    assert augment_products(products, Draws([0.0]), 0.0, 0.99, with_image.uses_image) == [
        products[0], ProductInput("", image=products[1].image)
    ]


@pytest.mark.parametrize("key", ["title_dropout", "title_word_dropout"])
@pytest.mark.parametrize("value", [1.0, -0.1])
def test_dropout_probabilities_must_lie_in_zero_one(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"train.{key}"):
        build_config({"train": {key: value}})


# -- category -----------------------------------------------------------------------------
def test_use_category_puts_the_category_after_the_title(tokenizer) -> None:  # type: ignore[no-untyped-def]
    product = ProductInput("red shirt", category="Apparel > Topwear")
    title = ["[CLS]", "red", "shirt", "[SEP]"]
    assert _tokens(Featurizer(tokenizer, ModelConfig()), product, tokenizer) == title
    with_category = Featurizer(tokenizer, ModelConfig(use_category=True))
    assert _tokens(with_category, product, tokenizer) == title + ["apparel", ">", "top", "##wear", "[SEP]"]
    assert _tokens(with_category, ProductInput("red shirt"), tokenizer) == title  # no category: the title alone
    # truncation cuts the category first: 4 tokens leave the title whole
    assert _tokens(Featurizer(tokenizer, ModelConfig(use_category=True, max_title_len=4)), product, tokenizer) == title


def test_the_category_reaches_product_inputs_from_the_catalogue_and_from_events(tmp_path: Path) -> None:
    catalog = pd.DataFrame({"title": ["red shirt", "jeans"], "category": ["Apparel > Topwear", ""],
                            "image": [None, None]})
    assert [p.category for p in catalog_inputs(catalog)] == ["Apparel > Topwear", None]
    assert [p.category for p in catalog_inputs(catalog.drop(columns="category"))] == [None, None]
    event = ProductUpsert(type="upsert", product_id="p1", version=1, title="Red shirt", category="Apparel > Topwear")
    assert encoder_input(event, tmp_path).category == "Apparel > Topwear"


def test_configs_saved_before_the_new_keys_load_with_them_off() -> None:
    saved = RunConfig().model_dump(mode="json")
    del saved["model"]["use_category"], saved["train"]["title_dropout"], saved["train"]["title_word_dropout"]
    del saved["train"]["grade1_weight"]
    run = build_config(saved)
    assert (run.model.use_category, run.train.title_dropout, run.train.title_word_dropout) == (False, 0.0, 0.0)
    assert run.train.grade1_weight == 0.0
    check_same_run(saved, RunConfig().model_dump(mode="json"))  # such a run can be resumed
    with pytest.raises(ConfigError, match="model.use_category: False -> True"):
        check_same_run(saved, RunConfig(model=ModelConfig(use_category=True)).model_dump(mode="json"))
