"""Target 2: products per second of the product tower vs plain ``SentenceTransformer.encode``.

``python -m bench.performance.encoding [--encoder SPEC] [--repeats 5] [--tiny]``

``python -m bench.performance.encoding --featurizer-only [--products 3000] [--featurize-threads 1 2 4]``
times the featurizer alone (tokenising titles, decoding images), with no model: the CPU work that
must keep up with a GPU tower. Per thread count it compares threads decoding one batch's images
with threads featurising whole batches ahead (what the torch encoder does), and checks that every
configuration gives the same arrays. It writes its own section.

The baseline is what a user would write: ``SentenceTransformer(MiniLM-L6).encode(titles)`` with
default settings, over the catalogue's titles. The candidates are the product tower of the
model behind ``--encoder`` on each runtime (torch, ONNX fp32, ONNX int8), over the same products
with their images, since that is the work ingestion does. All configurations run interleaved in
each repeat (the order rotates), and the ratio is taken within each repeat.

Vectors that differ from fp32 must not cost retrieval quality: each configuration's vectors are
scored on the dev split (exact dense retrieval, ``acebert.evaluate``), and the int8 towers must
stay within 0.5 point nDCG@10 of fp32.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from acebert.data import catalog_inputs, load_catalog, load_qrels, load_queries
from acebert.encoder import Encoder, ProductInput
from acebert.features import Featurizer, ProductBatch, run_ahead
from acebert.minilm import base_model_path
from bench.performance.common import (
    ENCODE_BATCH,
    TINY_PRODUCTS,
    RunInfo,
    add_common_args,
    checkpoint_of,
    encoder_variants,
    finish_args,
    load_inputs,
    prepare_encoder,
    section_header,
    write_outputs,
)
from bench.performance.stats import paired_ratios, throughput_summary, verdict
from bench.report import markdown_table

TARGET_RATIO = 1.5
MAX_NDCG_DROP = 0.005  # 0.5 point of nDCG@10
BASELINE = "plain SentenceTransformer.encode (baseline)"
WARM_UP = 32  # products encoded once per configuration before timing (first-call set-up)
Encode = Callable[[slice], np.ndarray]  # encodes the catalogue rows in the slice
FEATURIZER_PRODUCTS = 3000  # --featurizer-only: the first products of the catalogue
FEATURIZE_THREADS = (1, 2, 4)
Featurize = Callable[[Sequence[ProductInput]], Iterable[ProductBatch]]  # products -> their batches, in order


def plain_sentence_transformer(titles: list[str]) -> Encode:
    """The baseline exactly as a user writes it: default batch size, threads and options."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_model_path()), device="cpu", local_files_only=True)
    return lambda rows: model.encode(titles[rows], show_progress_bar=False)


def configurations(spec: str, catalog: pd.DataFrame, batch_size: int) -> tuple[dict[str, Encode], dict[str, Encoder]]:
    """Label -> encode-the-catalogue function (baseline first), and label -> encoder of each candidate."""
    products = catalog_inputs(catalog)
    encoders = {label: prepare_encoder(variant) for label, variant in encoder_variants(spec).items()}
    runs: dict[str, Encode] = {BASELINE: plain_sentence_transformer(list(catalog["title"]))}
    for label, encoder in encoders.items():
        runs[label] = lambda rows, encoder=encoder: encoder.encode_products(products[rows], batch_size)  # type: ignore[misc]
    return runs, encoders


def measure(runs: dict[str, Encode], items: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Products/s of every configuration per repeat (order rotated each repeat) and the last vectors."""
    rates: dict[str, list[float]] = {label: [] for label in runs}
    vectors: dict[str, np.ndarray] = {}
    labels = list(runs)
    for encode in runs.values():
        encode(slice(0, WARM_UP))
    for repeat in range(repeats):
        shift = repeat % len(labels)
        for label in labels[shift:] + labels[:shift]:
            started = time.perf_counter()
            vectors[label] = np.asarray(runs[label](slice(0, items)), dtype=np.float32)
            rates[label].append(items / (time.perf_counter() - started))
            print(f"repeat {repeat + 1}/{repeats}  {label:<45} {rates[label][-1]:7.1f} products/s", flush=True)
    return rates, vectors


def cosine_to(reference: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
    """Mean and minimum cosine between matching rows (both sets are L2-normalised)."""
    cosines = (reference * vectors).sum(1)
    return {"mean": float(cosines.mean()), "min": float(cosines.min())}


def dev_quality(
    args: argparse.Namespace, catalog: pd.DataFrame, encoders: dict[str, Encoder], vectors: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Dev-split dense retrieval of each (query tower, product vectors) pair worth comparing.

    Besides each runtime on its own, it scores the int8 query tower against fp32 product
    vectors: the query benchmark's index holds fp32 vectors, and that pairing is what a fast
    query path on an existing index would serve.
    """
    from acebert.evaluate import evaluate_split, restrict_qrels
    from acebert.minilm import MiniLMEncoder

    queries = load_queries(args.catalog / "queries_dev.tsv")
    qrels = restrict_qrels(load_qrels(args.catalog / "qrels_dev.tsv"), set(catalog["product_id"]))
    if not qrels:
        print("no dev query has a relevant product in this catalogue sample: quality skipped", flush=True)
        return []
    pairs: list[tuple[str, Encoder, str]] = [(BASELINE, MiniLMEncoder(), BASELINE)]
    pairs += [(label, encoder, label) for label, encoder in encoders.items()]
    labels = list(encoders)
    if len(labels) == 3:  # torch fp32, ONNX fp32, ONNX int8
        pairs.append((f"{labels[2]} queries on {labels[0]} products", encoders[labels[2]], labels[0]))
    rows = []
    for label, query_encoder, product_label in pairs:
        report = evaluate_split(query_encoder, catalog, vectors[product_label], queries, qrels)
        rows.append({"configuration": label, "queries": report["queries"], **report["all"]})
    return rows


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.encoding", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=5)
    parser.add_argument("--batch-size", type=int, default=ENCODE_BATCH, help="product tower batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--featurizer-only", action="store_true",
                        help="time the featurizer alone per --featurize-threads (section encoding-featurizer)")
    parser.add_argument("--products", type=int, default=FEATURIZER_PRODUCTS,
                        help="--featurizer-only: the first N catalogue products (default: %(default)s)")
    parser.add_argument("--featurize-threads", type=int, nargs="+", default=list(FEATURIZE_THREADS),
                        help="--featurizer-only: thread counts to compare with 1 thread (default: %(default)s)")
    return finish_args(parser.parse_args(argv))


# --- --featurizer-only ----------------------------------------------------------------------
def featurizer_for(spec: str, image_threads: int = 1) -> Featurizer:
    """The featurizer of the checkpoint behind ``spec`` (its tokenizer and config), else MiniLM's defaults."""
    from acebert.checkpoint_layout import load_tokenizer, read_config
    from acebert.config import ModelConfig

    checkpoint = checkpoint_of(spec)
    if checkpoint is None:
        return Featurizer(load_tokenizer(base_model_path()), ModelConfig(), image_threads)
    config = ModelConfig.model_validate(read_config(checkpoint)["model"])
    return Featurizer(load_tokenizer(checkpoint), config, image_threads)


def batched(products: Sequence[ProductInput], batch_size: int) -> list[Sequence[ProductInput]]:
    """Consecutive batches of ``products``."""
    return [products[start : start + batch_size] for start in range(0, len(products), batch_size)]


def featurizer_configurations(spec: str, batch_size: int, thread_counts: Sequence[int]) -> dict[str, Featurize]:
    """Label -> configuration: one thread first, then per count > 1 the two ways of using threads.

    "decoding each batch's images": one batch at a time, its images over the threads
    (``Featurizer(image_threads=n)``). "featurising whole batches ahead": n batches at a time,
    each on one thread, as :class:`acebert.checkpoint.AceBertEncoder` featurises (``threads=n``).
    """
    sequential = featurizer_for(spec)
    configurations: dict[str, Featurize] = {
        "1 thread": lambda products: map(sequential.products, batched(products, batch_size))}
    for threads in (count for count in thread_counts if count > 1):
        per_image = featurizer_for(spec, threads)
        pool = ThreadPoolExecutor(threads)
        configurations[f"{threads} threads decoding each batch's images"] = (
            lambda products, featurizer=per_image: map(featurizer.products, batched(products, batch_size)))  # type: ignore[misc]
        configurations[f"{threads} threads featurising whole batches ahead"] = (
            lambda products, pool=pool, depth=threads: run_ahead(  # type: ignore[misc]
                sequential.products, batched(products, batch_size), pool, depth))
    return configurations


def digest(batches: Iterable[ProductBatch]) -> str:
    """A hash of every array of every batch (shapes included), to compare configurations without keeping them."""
    sha = hashlib.sha256()
    for batch in batches:
        for array in (batch.input_ids, batch.attention_mask, batch.images, batch.has_image):
            sha.update(repr(array.shape).encode())
            sha.update(array.tobytes())
    return sha.hexdigest()


def render_featurizer(payload: dict[str, Any], info: RunInfo) -> str:
    """The Markdown section of ``--featurizer-only``: products/s per configuration and the ratio to one thread."""
    base = next(iter(payload["throughput"]))
    rows = [[label, f"{s['median']:.0f}", f"{s['min']:.0f}-{s['max']:.0f}", f"{payload['ratios'][label]:.2f}x"]
            for label, s in payload["throughput"].items()]
    cores = payload["cores"]
    overlap = " With 2 cores little overlap is possible." if cores <= 2 else ""
    return "\n".join([
        section_header("Target 2, featurizer alone: tokenising and decoding images", info),
        f"The first {payload['products']} catalogue products ({payload['with_image']} with an image), featurised "
        f"in consecutive batches of {payload['batch_size']} with no model, {payload['repeats']} interleaved repeats "
        f"(order rotated). Ratio = median over repeats of (configuration / {base}) within the repeat. Arrays "
        f"bit-identical across configurations: {'yes' if payload['identical'] else 'NO'}.\n",
        markdown_table(["configuration", "products/s (median)", "min-max", f"vs {base}"], rows),
        f"\n{cores} CPU cores, shared with other jobs: threads beyond the free cores cannot add throughput.{overlap} "
        "GPU throughput of the torch encoder, which featurises whole batches ahead: not measured by this mode "
        "(it runs no model).",
    ])


def featurizer_only(args: argparse.Namespace, info: RunInfo) -> int:
    """``--featurizer-only``: products/s of the featurizer per configuration; fails if their arrays differ."""
    catalog = load_catalog(args.catalog).head(TINY_PRODUCTS if args.tiny else args.products)
    products = catalog_inputs(catalog)
    configurations = featurizer_configurations(args.encoder, args.batch_size, args.featurize_threads)
    identical = len({digest(featurize(products)) for featurize in configurations.values()}) == 1
    runs: dict[str, Encode] = {
        label: lambda rows, featurize=featurize: np.concatenate([b.has_image for b in featurize(products[rows])])  # type: ignore[misc]
        for label, featurize in configurations.items()
    }
    rates, _ = measure(runs, len(products), args.repeats)
    per_repeat = {label: [{"rate": r} for r in values] for label, values in rates.items()}
    base = next(iter(per_repeat))
    payload = {
        **info.as_dict(), "encoder": args.encoder, "products": len(products),
        "with_image": int(catalog["image"].notna().sum()), "repeats": args.repeats, "batch_size": args.batch_size,
        "featurize_threads": args.featurize_threads, "cores": os.cpu_count(), "identical": identical,
        "throughput": {label: throughput_summary(r) for label, r in rates.items()}, "rates": rates,
        "ratios": {label: paired_ratios(per_repeat[label], per_repeat[base], ["rate"])["rate"] for label in rates},
        "gpu_products_per_s": "not measured (this mode runs no model)",
    }
    write_outputs(args, "encoding-featurizer", payload, render_featurizer(payload, info))
    return 0 if identical else 1


def render(payload: dict[str, Any], info: RunInfo) -> str:
    """The Markdown section: speed table, verdict, quality table."""
    speed = payload["throughput"]
    rows = [
        [label, f"{s['median']:.0f}", f"{s['min']:.0f}-{s['max']:.0f}", f"{payload['ratios'][label]:.2f}x",
         *(f"{payload['cosine_to_fp32'][label][k]:.4f}" if label in payload["cosine_to_fp32"] else "-"
           for k in ("mean", "min"))]
        for label, s in speed.items()
    ]
    best = payload["best"]
    text = [
        section_header("Target 2: encoding throughput", info),
        f"{payload['products']} products ({payload['with_image']} with an image), {payload['repeats']} interleaved "
        f"repeats, product tower batch {payload['batch_size']}, {payload['threads']} threads. Ratio = median over "
        "repeats of (configuration / baseline) within the repeat.\n",
        markdown_table(["configuration", "products/s (median)", "min-max", "vs baseline", "cosine to torch fp32 (mean)",
                        "(min)"], rows),
        f"\n**Target: >= {TARGET_RATIO}x the baseline with nDCG@10 within 0.5 point of fp32. Fastest configuration "
        f"that keeps quality: {best['configuration']} at {best['ratio']:.2f}x: {best['verdict']}.**\n",
    ]
    if payload["quality"]:
        quality = [[r["configuration"], r["queries"], f"{r['ndcg@10']:.4f}", f"{r['recall@10']:.4f}",
                    f"{r['mrr@10']:.4f}", r.get("ndcg_change_points", "")] for r in payload["quality"]]
        text += ["\nDev split, exact dense retrieval over the same catalogue (nDCG change in points vs the "
                 "model's torch fp32 vectors):\n",
                 markdown_table(["configuration", "queries", "nDCG@10", "recall@10", "MRR@10", "nDCG change (points)"],
                                quality)]
    return "\n".join(text)


def best_configuration(ratios: dict[str, float], quality: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest candidate whose nDCG@10 stays within the allowed drop of the torch fp32 tower."""
    ndcg = {row["configuration"]: row["ndcg@10"] for row in quality}
    reference = ndcg.get("torch fp32")
    allowed = [
        label for label in ratios
        if label != BASELINE and (reference is None or label not in ndcg or reference - ndcg[label] <= MAX_NDCG_DROP)
    ]
    label = max(allowed, key=ratios.__getitem__)
    return {"configuration": label, "ratio": ratios[label],
            "verdict": verdict(ratios[label], TARGET_RATIO, higher_is_better=True)}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.encoding", argv)
    if args.featurizer_only:
        return featurizer_only(args, info)
    import torch

    torch.set_num_threads(args.threads)
    catalog, _ = load_inputs(args)
    runs, encoders = configurations(args.encoder, catalog, args.batch_size)
    rates, vectors = measure(runs, len(catalog), args.repeats)
    per_repeat = {label: [{"rate": r} for r in values] for label, values in rates.items()}
    ratios = {label: paired_ratios(per_repeat[label], per_repeat[BASELINE], ["rate"])["rate"] for label in rates}
    reference = next(iter(encoders), None)
    cosines = {label: cosine_to(vectors[reference], vectors[label]) for label in encoders} if reference else {}
    quality = dev_quality(args, catalog, encoders, vectors)
    fp32 = next((row["ndcg@10"] for row in quality if row["configuration"] == reference), None)
    for row in quality:
        if fp32 is not None and row["configuration"] != BASELINE:
            row["ndcg_change_points"] = f"{100 * (row['ndcg@10'] - fp32):+.2f}"
    payload = {
        **info.as_dict(), "encoder": args.encoder, "products": len(catalog),
        "with_image": int(catalog["image"].notna().sum()), "repeats": args.repeats, "batch_size": args.batch_size,
        "threads": args.threads, "throughput": {label: throughput_summary(r) for label, r in rates.items()},
        "rates": rates, "ratios": ratios, "cosine_to_fp32": cosines, "quality": quality,
        "model_versions": {label: encoder.model_version for label, encoder in encoders.items()},
        "best": best_configuration(ratios, quality),
    }
    write_outputs(args, "encoding", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
