"""Turning query texts and :class:`ProductInput` records into model-ready numpy arrays.

Training, the torch encoder and the ONNX encoder use this one module, so a checkpoint sees at
serving time exactly the tokenisation, truncation and image preprocessing it was trained with.
It produces numpy, not tensors, so that the ONNX serving path needs no torch; the torch side
converts the arrays (:mod:`acebert.tensors`).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from tokenizers import Tokenizer

from acebert.config import ModelConfig
from acebert.encoder import ProductInput
from acebert.images import load_image

PAD_TOKEN = "[PAD]"  # the BERT backbones' padding token
SEP_TOKEN = "[SEP]"  # the BERT backbones' separator, between the title and the category
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class QueryBatch:
    input_ids: np.ndarray  # (B, T) int64
    attention_mask: np.ndarray  # (B, T) int64


@dataclass(frozen=True)
class ProductBatch:
    input_ids: np.ndarray  # (B, T) int64
    attention_mask: np.ndarray  # (B, T) int64
    images: np.ndarray  # (B, 3, H, W) float32 in [-1, 1]; zeros where has_image is False
    has_image: np.ndarray  # (B,) bool


def _truncating(tokenizer: Tokenizer, max_length: int) -> Tokenizer:
    """A private copy of ``tokenizer`` that truncates to ``max_length`` tokens and never pads.

    Configured once here and never changed afterwards, so threads can share it: a tokenizer
    whose settings change per call (as Hugging Face's do) must not be called concurrently.
    Padding is done in numpy (:func:`_pad`); a saved tokenizer may carry fixed padding.
    """
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length)
    return copy


def _pixels(source: bytes | str | Path, size: tuple[int, int]) -> np.ndarray:
    """One image as the image tokens read it: ``(3, H, W)`` float32 in [-1, 1]."""
    return load_image(source, size).transpose(2, 0, 1).astype(np.float32) / np.float32(127.5) - np.float32(1.0)


class Featurizer:
    """Tokenises text and decodes images according to a :class:`ModelConfig`.

    With ``image_threads`` > 1 a batch's images decode on a pool of that many threads, kept for
    the featurizer's lifetime so a batch does not pay for starting threads. The arrays are the
    same whatever the thread count. The default is 1 because on the catalogue it does not pay:
    Pillow releases the GIL while it decodes, but it parses a JPEG's headers in Python, and for
    60x80 thumbnails that costs more than decoding, so threads mostly wait for the GIL
    (``python -m bench.performance.encoding --featurizer-only``, docs/performance.md: slower with
    2 and 4 threads on 2 cores). Larger images, whose decoding and resizing dominate, may gain.
    Featurising whole batches on parallel threads (:func:`run_ahead`) did better there.
    """

    def __init__(self, tokenizer: Tokenizer, config: ModelConfig, image_threads: int = 1) -> None:
        """``tokenizer``: the backbone's, saved with each checkpoint (:mod:`acebert.checkpoint_layout`).

        ``image_threads``: threads that decode a batch's images; 1 decodes them one after the
        other on the calling thread, with no pool.
        """
        self.config = config
        self.image_threads = image_threads
        if self.image_threads < 1:
            raise ValueError(f"image_threads must be >= 1, got {self.image_threads}")
        self._image_pool = (
            ThreadPoolExecutor(self.image_threads, thread_name_prefix="acebert-images")
            if self.image_threads > 1 else None
        )
        self._query_tokenizer = _truncating(tokenizer, config.max_query_len)
        self._title_tokenizer = _truncating(tokenizer, config.max_title_len)
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        if pad_id is None:
            raise ValueError(f"the tokenizer has no {PAD_TOKEN} token")
        if config.use_category and tokenizer.token_to_id(SEP_TOKEN) is None:
            # without it the separator would be tokenised as the text "[", "sep", "]"
            raise ValueError(f"use_category needs a tokenizer with a {SEP_TOKEN} token")
        self._pad_id = pad_id

    def _pad(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)``, right-padded to the longest row, as the tokenizers pad."""
        width = max((len(row) for row in ids), default=0)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = tokens
            attention_mask[row, : len(tokens)] = 1
        return input_ids, attention_mask

    def _query_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._query_tokenizer.encode_batch(list(texts))]

    def _product_text(self, product: ProductInput) -> str:
        """The text the product tower reads: the title, then (``use_category``) ``[SEP]`` and the category.

        One string rather than a tokenizer text pair: a pair is truncated from its longer part, so
        a long category path could cut the title, while one string is cut from its end and the
        title always comes through first (up to ``max_title_len`` tokens).
        """
        if self.config.use_category and product.category:
            return f"{product.title} {SEP_TOKEN} {product.category}"
        return product.title

    def _title_ids(self, products: Sequence[ProductInput]) -> list[list[int]]:
        texts = [self._product_text(p) for p in products]
        return [encoding.ids for encoding in self._title_tokenizer.encode_batch(texts)]

    def queries(self, texts: Sequence[str]) -> QueryBatch:
        return QueryBatch(*self._pad(self._query_ids(texts)))

    def uses_image(self, product: ProductInput) -> bool:
        """Whether the product tower will see this product's image (never, for a title-only model)."""
        return self.config.use_image and product.image is not None

    def products(self, products: Sequence[ProductInput]) -> ProductBatch:
        """Arrays for a batch of products; raises :class:`acebert.images.ImageError` on a bad image.

        With several bad images, the error is the first one's in batch order, as when decoding
        one image after the other.
        """
        input_ids, attention_mask = self._pad(self._title_ids(products))
        height, width = self.config.image_size
        images = np.zeros((len(products), 3, height, width), dtype=np.float32)
        has_image = np.zeros(len(products), dtype=bool)
        rows = [row for row, product in enumerate(products) if self.uses_image(product)]
        sources = [products[row].image for row in rows]
        for row, pixels in zip(rows, self._decode(sources)):  # type: ignore[arg-type]  # uses_image: not None
            images[row] = pixels
            has_image[row] = True
        return ProductBatch(input_ids, attention_mask, images, has_image)

    def _decode(self, sources: Sequence[bytes | str | Path]) -> Iterable[np.ndarray]:
        """:func:`_pixels` of each source, in order; on the pool when there are two or more.

        Handing an image to a pool thread costs tens of microseconds against a few hundred for
        decoding a catalogue photo, so any two images pay for it; one decodes inline (the
        ingestion pipeline's one-product retries). ``Executor.map`` yields in input order and
        raises the first failing source's error when the iteration reaches it.
        """
        size = self.config.image_size
        if self._image_pool is None or len(sources) < 2:
            return (_pixels(source, size) for source in sources)
        return self._image_pool.map(_pixels, sources, [size] * len(sources))

    def query_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Token counts, used to sort a batch by length and cut padding."""
        return np.array([len(ids) for ids in self._query_ids(texts)])

    def product_lengths(self, products: Sequence[ProductInput]) -> np.ndarray:
        """Sequence lengths the product tower will see (title tokens plus image tokens)."""
        return np.array([len(ids) + self._image_tail(p) for ids, p in zip(self._title_ids(products), products)])

    def _image_tail(self, product: ProductInput) -> int:
        """Tokens after the title: the image tokens, one "no image" token, or none (title-only model)."""
        if self.uses_image(product):
            return self.config.n_image_tokens
        return 1 if self.config.use_image else 0


def lookahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items`` in order, each yielded once the ``depth`` after it have been produced (or ran out).

    Producing an item can start work (a featurising task, a batch queued on a GPU) that then
    runs while the consumer deals with the earlier items.
    """
    ahead: deque[T] = deque()
    for item in items:
        ahead.append(item)
        if len(ahead) > depth:
            yield ahead.popleft()
    yield from ahead


def run_ahead(
    function: Callable[[T], R], items: Sequence[T], pool: ThreadPoolExecutor | None, depth: int
) -> Iterator[R]:
    """``function(item)`` for each item, in order, computed on ``pool`` up to ``depth`` items ahead.

    What the consumer does with one result (run the model on a featurised batch) overlaps the
    work on the next ones, and at most ``depth`` items are computed ahead. Without a pool, or for
    a single item, each item runs on the calling thread when its turn comes. An item's error is
    raised when its turn comes, as if the items ran one after the other (items already started
    then finish in the background and are dropped).
    """
    if pool is None or len(items) < 2:
        return map(function, items)
    started = (pool.submit(function, item) for item in items)
    return (future.result() for future in lookahead(started, depth))
