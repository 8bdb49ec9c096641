"""The encoder API that ingestion and search depend on.

Workers call ``encode_products``; the query path calls ``encode_queries``. Both return
L2-normalised float32 arrays of shape ``(n, dimension)``, and every encoder names the model that
produced the vectors (``model_version``) so the index can record it and a re-embed can be planned
when the model changes.

This module is the contract only: it imports no model library and no implementation, so the
ingestion and search code that depends on it loads none. Implementations live in
:mod:`acebert.minilm`, :mod:`acebert.checkpoint` (torch) and :mod:`acebert.onnx_encoder`;
:func:`acebert.loading.load_encoder` picks one.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ProductInput:
    """What the product tower sees: the title and, optionally, the image (bytes or a file path).

    ``category`` (a path such as ``"Apparel > Topwear > Tshirts"``) is read only by models trained
    with ``use_category``; the others ignore it, so callers can always fill it in.
    """

    title: str
    image: bytes | str | Path | None = None
    category: str | None = None


@runtime_checkable
class Encoder(Protocol):
    """Anything that embeds queries and products into one vector space."""

    model_version: str
    dimension: int

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray: ...


class CachedQueryEncoder:
    """An encoder that remembers the vectors of recent query texts (LRU, thread-safe).

    Shop search traffic is head-heavy: the same short queries come back all day, and a cached
    vector skips the query tower, the largest single cost of a hybrid query on a small CPU
    (``docs/performance.md``). Each text is encoded alone, exactly as an uncached search does,
    so a cached vector is the one a live search would have used. ``max_entries=None`` never
    evicts (benchmarks that replay a fixed query set). Products pass through uncached.
    """

    def __init__(self, encoder: Encoder, max_entries: int | None = 10_000) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be >= 1 or None, got {max_entries}")
        self.encoder = encoder
        self.model_version = encoder.model_version
        self.dimension = encoder.dimension
        self.max_entries = max_entries
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text, batch_size)
        return out

    def _vector(self, text: str, batch_size: int) -> np.ndarray:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
        vector = self.encoder.encode_queries([text], batch_size)[0]  # outside the lock: slow
        with self._lock:
            self._vectors[text] = vector
            if self.max_entries is not None and len(self._vectors) > self.max_entries:
                self._vectors.popitem(last=False)
        return vector

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        return self.encoder.encode_products(products, batch_size)

