"""Turning query texts and :class:`ProductInput` records into model-ready tensors.

Training and the inference encoder use this one module, so a checkpoint sees at serving time
exactly the tokenisation, truncation and image preprocessing it was trained with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from acebert.config import ModelConfig
from acebert.encoder import ProductInput
from acebert.images import load_image


@dataclass(frozen=True)
class QueryBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def to(self, device: torch.device | str) -> "QueryBatch":
        return QueryBatch(self.input_ids.to(device), self.attention_mask.to(device))


@dataclass(frozen=True)
class ProductBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    images: torch.Tensor  # (B, 3, H, W) in [-1, 1]; zeros where has_image is False
    has_image: torch.Tensor  # (B,) bool

    def to(self, device: torch.device | str) -> "ProductBatch":
        return ProductBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.images.to(device), self.has_image.to(device)
        )


class Featurizer:
    """Tokenises text and decodes images according to a :class:`ModelConfig`."""

    def __init__(self, tokenizer: Any, config: ModelConfig) -> None:
        """``tokenizer`` is a Hugging Face tokenizer (the backbone's, saved with each checkpoint)."""
        self.tokenizer = tokenizer
        self.config = config

    def _tokenize(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )

    def queries(self, texts: Sequence[str]) -> QueryBatch:
        tokens = self._tokenize(texts, self.config.max_query_len)
        return QueryBatch(tokens["input_ids"], tokens["attention_mask"])

    def uses_image(self, product: ProductInput) -> bool:
        """Whether the product tower will see this product's image (never, for a title-only model)."""
        return self.config.use_image and product.image is not None

    def products(self, products: Sequence[ProductInput]) -> ProductBatch:
        """Tensors for a batch of products; raises :class:`acebert.images.ImageError` on a bad image."""
        tokens = self._tokenize([p.title for p in products], self.config.max_title_len)
        height, width = self.config.image_size
        images = torch.zeros((len(products), 3, height, width))
        has_image = torch.zeros(len(products), dtype=torch.bool)
        for row, product in enumerate(products):
            if self.uses_image(product):
                assert product.image is not None  # uses_image checked it
                pixels = load_image(product.image, self.config.image_size)
                images[row] = torch.from_numpy(pixels).permute(2, 0, 1).float() / 127.5 - 1.0
                has_image[row] = True
        return ProductBatch(tokens["input_ids"], tokens["attention_mask"], images, has_image)

    def query_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Token counts, used to sort a batch by length and cut padding."""
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.config.max_query_len)["input_ids"]
        return np.array([len(x) for x in ids])

    def product_lengths(self, products: Sequence[ProductInput]) -> np.ndarray:
        """Sequence lengths the product tower will see (title tokens plus image tokens)."""
        titles = [p.title for p in products]
        ids = self.tokenizer(titles, truncation=True, max_length=self.config.max_title_len)["input_ids"]
        return np.array([len(x) + self._image_tail(p) for x, p in zip(ids, products)])

    def _image_tail(self, product: ProductInput) -> int:
        """Tokens after the title: the image tokens, one "no image" token, or none (title-only model)."""
        if self.uses_image(product):
            return self.config.n_image_tokens
        return 1 if self.config.use_image else 0
