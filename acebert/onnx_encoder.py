"""The :class:`acebert.encoder.Encoder` over ONNX Runtime sessions of an exported checkpoint.

``load_encoder("onnx:CHECKPOINT")`` runs the fp32 graphs and ``load_encoder("onnx-int8:CHECKPOINT")``
the int8 ones, both exported by :mod:`acebert.onnx_export` into ``CHECKPOINT/onnx/``.

Why it exists: per call, ONNX Runtime has a fraction of torch's overhead (a short query encodes
several times faster), and int8 graphs run about twice as fast again on a CPU with VNNI.
Preprocessing is :class:`acebert.features.Featurizer`, exactly what torch training and inference
use, so the only difference from :class:`acebert.checkpoint.AceBertEncoder` is the runtime.
Nothing here imports torch or transformers (the tokenizer is read by the ``tokenizers`` library),
so a process that serves an export does not pay for loading them.

``model_version``: fp32 graphs reproduce the torch vectors (cosine > 0.9999), so they keep the
checkpoint's version and their documents mix freely with torch-encoded ones. int8 vectors differ
(cosine to fp32 over the catalogue: mean 0.994, minimum 0.98), so they get a suffix
(:func:`acebert.onnx_layout.int8_version_suffix`, which also tells 7-bit weights from the older
full-range ones) and an index can tell them apart.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
from tokenizers import Tokenizer

from acebert.checkpoint_layout import load_tokenizer, read_config, weights_version
from acebert.config import ModelConfig
from acebert.encoder import ProductInput
from acebert.features import Featurizer, ProductBatch, QueryBatch
from acebert.onnx_layout import (
    INPUTS,
    ONNX_DIR,
    PRODUCT_IMAGE,
    PRODUCT_TEXT,
    QUERY,
    graph_file,
    int8_version_suffix,
    quantised_as_now,
    read_manifest,
)

log = logging.getLogger(__name__)
Feed = dict[str, np.ndarray]
T = TypeVar("T")
R = TypeVar("R")


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Row indices in batches of similar length (longest first), so little padding is computed."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def parallel_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``function(item)`` for each item, in order, up to ``workers`` at a time on threads.

    ONNX Runtime releases the GIL while it runs, so threads give real parallelism; a single
    item (one query) or one worker runs inline, without a thread pool.
    """
    if workers < 2 or len(items) < 2:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        yield from pool.map(function, items)


def _session(path: Path) -> Any:
    """A CPU session that runs each call on one thread (see :class:`OnnxAceBertEncoder`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxAceBertEncoder:
    """ACE-BERT's towers on ONNX Runtime.

    Threads: each call into ONNX Runtime runs on one thread, and up to ``threads`` batches run
    at once (default: one per core). The towers' matrices are small (64 products x ~30 tokens x 384), so splitting one
    call over two threads costs more in hand-offs than it gains: on 2 cores, int8 product
    encoding ran at ~520 products/s with one batch on two threads and ~720 with two batches on
    one thread each, and one short query took 2.8 ms on one thread against 6.2 ms on two.

    Every session opens in the constructor: workers build their encoder before the first task
    (``workers.tasks``), so the first batch must not pay for loading graphs.

    Batches featurise concurrently: the featurizer's tokenizers are configured once and never
    changed, so threads can share them.
    """

    def __init__(
        self,
        onnx_dir: Path,
        tokenizer: Tokenizer,
        config: ModelConfig,
        model_version: str,
        int8: bool,
        threads: int | None = None,
    ) -> None:
        self.onnx_dir = Path(onnx_dir)
        self.featurizer = Featurizer(tokenizer, config)
        self.model_version = model_version
        self.dimension = config.dim
        self.int8 = int8
        self.threads = threads or os.cpu_count() or 1
        graphs = (QUERY, PRODUCT_TEXT, PRODUCT_IMAGE) if config.use_image else (QUERY, PRODUCT_TEXT)
        self._sessions = {name: _session(self.onnx_dir / graph_file(name, int8)) for name in graphs}

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        lengths = self.featurizer.query_lengths(texts) if len(texts) > batch_size else np.zeros(len(texts))
        return self._encode(texts, lengths, batch_size, self.featurizer.queries, QUERY)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        """Vectors in input order; image and image-less products run through their own graphs.

        A bad image raises :class:`acebert.images.ImageError`, as with the torch encoder.
        """
        products = list(products)
        out = np.zeros((len(products), self.dimension), dtype=np.float32)
        with_image = np.array([self.featurizer.uses_image(p) for p in products], dtype=bool)
        for mask, graph in ((with_image, PRODUCT_IMAGE), (~with_image, PRODUCT_TEXT)):
            rows = np.flatnonzero(mask)
            if len(rows):
                group = [products[i] for i in rows]
                lengths = self.featurizer.product_lengths(group)
                out[rows] = self._encode(group, lengths, batch_size, self.featurizer.products, graph)
        return out

    def _encode(
        self,
        items: list[Any],
        lengths: np.ndarray,
        batch_size: int,
        featurize: Callable[[list[Any]], QueryBatch | ProductBatch],
        graph: str,
    ) -> np.ndarray:
        """Vectors of ``items`` in length-sorted batches, ``self.threads`` batches in flight.

        ``featurize`` gives a batch whose fields are named as the graph's inputs.
        """
        session = self._sessions[graph]

        def run(rows: np.ndarray) -> np.ndarray:
            batch = featurize([items[i] for i in rows])
            feed: Feed = {name: getattr(batch, name) for name in INPUTS[graph]}
            return session.run(None, feed)[0]

        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        batches = list(length_sorted_batches(lengths, batch_size))
        for rows, vectors in zip(batches, parallel_map(run, batches, self.threads)):
            out[rows] = vectors
        return out


def load_onnx_encoder(checkpoint: Path, int8: bool, threads: int | None = None) -> OnnxAceBertEncoder:
    """The encoder for ``checkpoint``'s export; refuses an export made from other weights."""
    checkpoint = Path(checkpoint)
    onnx_dir = checkpoint / ONNX_DIR
    manifest = read_manifest(onnx_dir)
    version = weights_version(checkpoint)
    if manifest["weights_version"] != version:
        raise ValueError(
            f"{onnx_dir} was exported from {manifest['weights_version']}, but the checkpoint is now "
            f"{version}: run `python -m acebert.onnx_export {checkpoint}` again"
        )
    if int8 and not quantised_as_now(manifest):
        # served, not refused: its vectors are close to a current export's, and a running index may hold them
        log.warning("%s holds int8 graphs with full-range weights, which saturate on CPUs without VNNI. For vectors "
                    "that do not depend on the CPU, copy %s to a new directory, run `python -m acebert.onnx_export "
                    "NEW_DIR` and move the index to it with `hybrid-search reembed --encoder onnx-int8:NEW_DIR`",
                    onnx_dir, checkpoint)
    config = ModelConfig.model_validate(read_config(checkpoint)["model"])
    model_version = version + (int8_version_suffix(manifest) if int8 else "")
    return OnnxAceBertEncoder(onnx_dir, load_tokenizer(checkpoint), config, model_version, int8, threads)
