"""The :class:`acebert.encoder.Encoder` over ONNX Runtime sessions of an exported checkpoint.

``load_encoder("onnx:CHECKPOINT")`` runs the fp32 graphs and ``load_encoder("onnx-int8:CHECKPOINT")``
the int8 ones, both exported by :mod:`acebert.onnx_export` into ``CHECKPOINT/onnx/``.

Why it exists: per call, ONNX Runtime has a fraction of torch's overhead (a short query encodes
several times faster), and int8 graphs run about twice as fast again on a CPU with VNNI.
Preprocessing is :class:`acebert.features.Featurizer`, exactly what torch training and inference
use, so the only difference from :class:`acebert.checkpoint.AceBertEncoder` is the runtime.

``model_version``: fp32 graphs reproduce the torch vectors (cosine > 0.9999), so they keep the
checkpoint's version and their documents mix freely with torch-encoded ones. int8 vectors differ
(cosine about 0.98-0.99), so they get ``-onnx-int8`` appended and an index can tell them apart.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from acebert.checkpoint import read_config, weights_version
from acebert.config import ModelConfig
from acebert.encoder import ProductInput
from acebert.features import Featurizer
from acebert.onnx_export import (
    ONNX_DIR,
    PRODUCT_IMAGE,
    PRODUCT_TEXT,
    QUERY,
    graph_file,
    read_manifest,
)

FP32_PREFIX, INT8_PREFIX = "onnx", "onnx-int8"
INT8_VERSION_SUFFIX = "-onnx-int8"
# Same knob the workers use for torch (``workers.tasks``): one thread per worker process.
THREADS_ENV = "ACEBERT_TORCH_THREADS"
# A query is a handful of tokens: splitting its matrix products over two threads costs more in
# hand-offs than it saves (int8, one query at a time, 2 cores: p50 2.8 ms with 1 thread, 6.2 ms
# with 2), and the search engine on the same cores wants the other one.
QUERY_THREADS = 1
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


def prefetched(make: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """``make(item)`` for each item in order, the next one prepared in a background thread.

    Featurising a batch (tokenising, decoding JPEGs) is Python work that leaves ONNX Runtime's
    threads idle; ONNX Runtime releases the GIL while it runs, so preparing batch n+1 during
    batch n keeps both cores busy. One item (a single query) needs no thread.
    """
    if len(items) < 2:
        yield from map(make, items)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(make, items[0])
        for following in items[1:]:
            current, upcoming = upcoming.result(), pool.submit(make, following)
            yield current
        yield upcoming.result()


def default_threads() -> int:
    """Intra-op threads: ``ACEBERT_TORCH_THREADS`` when set (workers), else every core."""
    return int(os.environ.get(THREADS_ENV) or os.cpu_count() or 1)


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxAceBertEncoder:
    """ACE-BERT's towers on ONNX Runtime.

    Every session opens in the constructor: workers build their encoder before the first task
    (``workers.tasks``), so the first batch must not pay for loading graphs. ``threads`` is the
    product towers' intra-op thread count (batches parallelise well); the query tower runs
    single queries and gets ``query_threads``.
    """

    def __init__(
        self,
        onnx_dir: Path,
        tokenizer: Any,
        config: ModelConfig,
        model_version: str,
        int8: bool,
        threads: int | None = None,
        query_threads: int = QUERY_THREADS,
    ) -> None:
        self.onnx_dir = Path(onnx_dir)
        self.featurizer = Featurizer(tokenizer, config)
        self.model_version = model_version
        self.dimension = config.dim
        self.int8 = int8
        self.threads = threads or default_threads()
        products = (PRODUCT_TEXT, PRODUCT_IMAGE) if config.use_image else (PRODUCT_TEXT,)
        threads_of = {QUERY: query_threads, **{name: self.threads for name in products}}
        self._sessions = {name: _session(self.onnx_dir / graph_file(name, int8), n) for name, n in threads_of.items()}

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        lengths = self.featurizer.query_lengths(texts) if len(texts) > batch_size else np.zeros(len(texts))
        return self._encode(texts, lengths, batch_size, self._query_feed, QUERY)

    def encode_products(self, products: Sequence[ProductInput], batch_size: int = 64) -> np.ndarray:
        """Vectors in input order; image and image-less products run through their own graphs.

        A bad image raises :class:`acebert.images.ImageError`, as with the torch encoder.
        """
        products = list(products)
        out = np.zeros((len(products), self.dimension), dtype=np.float32)
        with_image = np.array([self.featurizer.uses_image(p) for p in products], dtype=bool)
        groups = ((with_image, self._image_feed, PRODUCT_IMAGE), (~with_image, self._text_feed, PRODUCT_TEXT))
        for mask, featurize, graph in groups:
            rows = np.flatnonzero(mask)
            if len(rows):
                group = [products[i] for i in rows]
                out[rows] = self._encode(group, self.featurizer.product_lengths(group), batch_size, featurize, graph)
        return out

    def _encode(
        self, items: list[Any], lengths: np.ndarray, batch_size: int, featurize: Callable[[list[Any]], Feed], graph: str
    ) -> np.ndarray:
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        batches = list(length_sorted_batches(lengths, batch_size))
        feeds = prefetched(featurize, [[items[i] for i in rows] for rows in batches])
        for rows, feed in zip(batches, feeds):
            out[rows] = self._sessions[graph].run(None, feed)[0]
        return out

    def _query_feed(self, texts: list[str]) -> Feed:
        batch = self.featurizer.queries(texts)
        return {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}

    def _text_feed(self, products: list[ProductInput]) -> Feed:
        batch = self.featurizer.products(products)
        return {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()}

    def _image_feed(self, products: list[ProductInput]) -> Feed:
        batch = self.featurizer.products(products)
        return {
            "input_ids": batch.input_ids.numpy(),
            "attention_mask": batch.attention_mask.numpy(),
            "images": batch.images.numpy(),
            "has_image": batch.has_image.numpy(),
        }


def is_onnx_spec(spec: str) -> bool:
    """Whether an encoder spec names ONNX graphs (``onnx:PATH`` or ``onnx-int8:PATH``)."""
    return spec.startswith((f"{FP32_PREFIX}:", f"{INT8_PREFIX}:"))


def parse_spec(spec: str) -> tuple[Path, bool]:
    """``(checkpoint dir, int8?)`` from an encoder spec ``onnx:PATH`` or ``onnx-int8:PATH``."""
    prefix, sep, path = spec.partition(":")
    if not sep or not path or prefix not in (FP32_PREFIX, INT8_PREFIX):
        raise ValueError(f"not an ONNX encoder spec: {spec!r}; expected {FP32_PREFIX}:PATH or {INT8_PREFIX}:PATH")
    return Path(path).expanduser(), prefix == INT8_PREFIX


def load_onnx_encoder(checkpoint: Path, int8: bool, threads: int | None = None) -> OnnxAceBertEncoder:
    """The encoder for ``checkpoint``'s export; refuses an export made from other weights."""
    from transformers import AutoTokenizer

    checkpoint = Path(checkpoint)
    onnx_dir = checkpoint / ONNX_DIR
    manifest = read_manifest(onnx_dir)
    version = weights_version(checkpoint)
    if manifest["weights_version"] != version:
        raise ValueError(
            f"{onnx_dir} was exported from {manifest['weights_version']}, but the checkpoint is now "
            f"{version}: run `python -m acebert.onnx_export {checkpoint}` again"
        )
    config = ModelConfig.model_validate(read_config(checkpoint)["model"])
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model_version = version + (INT8_VERSION_SUFFIX if int8 else "")
    return OnnxAceBertEncoder(onnx_dir, tokenizer, config, model_version, int8, threads)
