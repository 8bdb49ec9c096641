"""Offline evaluation of an encoder: exact cosine search over the catalogue, scored with ranx.

``python -m acebert.evaluate --checkpoint DIR|minilm --queries PATH --qrels PATH [--catalog DIR]``
prints (and optionally writes) a JSON report: recall@10/100, mrr@10, nDCG@10 over all queries,
per query kind and on the colour slice (see :mod:`acebert.slices`), plus the modality gap and,
for ACE-BERT checkpoints, the domain classifier's accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT
from acebert.data import catalog_inputs, load_catalog, load_qrels, load_queries
from acebert.encoder import Encoder, ProductInput
from acebert.loading import load_encoder
from acebert.metrics import Qrels, Run, evaluate_run, modality_gap, per_query
from acebert.slices import colour_slice, load_colours

TOP_K = 100
ENCODE_CHUNK = 2048  # products per progress-bar step; the encoder batches inside


def encode_catalog(encoder: Encoder, catalog: pd.DataFrame, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Product vectors for every catalogue row, in row order."""
    return encode_inputs(encoder, catalog_inputs(catalog), batch_size, progress)


def encode_inputs(encoder: Encoder, products: Sequence[ProductInput], batch_size: int = 64, progress: bool = True,
                  desc: str = "encode catalogue") -> np.ndarray:
    """Product vectors for ``products``, in order, with a progress bar over chunks of them."""
    chunks = range(0, len(products), ENCODE_CHUNK)
    parts = [
        encoder.encode_products(products[start : start + ENCODE_CHUNK], batch_size)
        for start in tqdm(chunks, desc=desc, unit="chunk", disable=not progress)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dimension), dtype=np.float32)


def search(query_vectors: np.ndarray, product_vectors: np.ndarray, product_ids: Sequence[str], k: int = TOP_K) -> list[dict[str, float]]:
    """Exact cosine top-``k`` per query (vectors are normalised, so cosine = dot product)."""
    k = min(k, len(product_ids))
    scores = query_vectors @ product_vectors.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    results = []
    for row, candidates in enumerate(top):
        ranked = candidates[np.argsort(-scores[row, candidates], kind="stable")]
        results.append({product_ids[i]: float(scores[row, i]) for i in ranked})
    return results


def restrict_qrels(qrels: Qrels, product_ids: set[str]) -> Qrels:
    """Judgments limited to the given products, dropping queries left without a grade-2 product.

    Used when a small run evaluates on part of the catalogue.
    """
    restricted = {qid: {pid: g for pid, g in judged.items() if pid in product_ids} for qid, judged in qrels.items()}
    return {qid: judged for qid, judged in restricted.items() if any(g == 2 for g in judged.values())}


def judged_queries(queries: pd.DataFrame, qrels: Qrels, product_ids: Sequence[str]) -> tuple[pd.DataFrame, Qrels]:
    """The judgments restricted to ``product_ids`` (:func:`restrict_qrels`) and the queries they still judge.

    Why: a query whose relevant products are all outside the catalogue scores 0 whatever the model
    does, so every evaluation over a (sub)catalogue drops it the same way.
    """
    qrels = restrict_qrels(qrels, set(product_ids))
    return queries[queries["query_id"].isin(qrels)].reset_index(drop=True), qrels


def evaluate_split(
    encoder: Encoder,
    catalog: pd.DataFrame,
    product_vectors: np.ndarray,
    queries: pd.DataFrame,
    qrels: Qrels,
    colours: dict[str, str] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Metrics of one query set against already-encoded catalogue vectors.

    ``colours`` (product id -> colour, from :func:`acebert.slices.load_colours`) enables the
    colour-slice metrics; pass None to skip them.
    """
    product_ids = list(catalog["product_id"])
    queries, qrels = judged_queries(queries, qrels, product_ids)
    started = time.perf_counter()
    query_vectors = encoder.encode_queries(list(queries["query"]), batch_size)
    query_seconds = time.perf_counter() - started
    run: Run = dict(zip(queries["query_id"], search(query_vectors, product_vectors, product_ids)))
    report: dict[str, Any] = {
        "queries": len(queries),
        "products": len(product_ids),
        "all": evaluate_run(qrels, run),
        "per_query_ndcg@10": per_query(qrels, run),  # for paired tests between models (acebert.ablations)
        "modality_gap": modality_gap(query_vectors, product_vectors),
        "query_seconds": round(query_seconds, 3),
    }
    if "kind" in queries:
        report["by_kind"] = {
            kind: {"queries": len(ids), **evaluate_run(qrels, run, ids)}
            for kind, ids in queries.groupby("kind")["query_id"]
        }
    if colours is not None:
        titles = dict(zip(catalog["product_id"], catalog["title"]))
        sliced = colour_slice(queries, qrels, titles, colours)
        report["colour_slice"] = {"queries": len(sliced), **(evaluate_run(qrels, run, sliced) if sliced else {})}
    domain_accuracy = getattr(encoder, "domain_accuracy", None)
    if domain_accuracy is not None:
        report["domain_accuracy"] = domain_accuracy(query_vectors, product_vectors)
    return report


def evaluate_encoder(
    encoder: Encoder,
    catalog: pd.DataFrame,
    splits: dict[str, tuple[pd.DataFrame, Qrels]],
    colours: dict[str, str] | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Encode the catalogue once and evaluate each named ``(queries, qrels)`` split against it."""
    started = time.perf_counter()
    product_vectors = encode_catalog(encoder, catalog, batch_size, progress)
    report: dict[str, Any] = {
        "model_version": encoder.model_version,
        "catalogue_seconds": round(time.perf_counter() - started, 1),
    }
    for name, (queries, qrels) in splits.items():
        report[name] = evaluate_split(encoder, catalog, product_vectors, queries, qrels, colours, batch_size)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m acebert.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="ACE-BERT checkpoint directory, or 'minilm'")
    parser.add_argument("--queries", required=True, type=Path, help="queries TSV (query_id, query[, kind])")
    parser.add_argument("--qrels", required=True, type=Path, help="qrels TSV (query_id, product_id, grade)")
    parser.add_argument("--catalog", type=Path, default=REPO_ROOT / DEFAULT_DATA_DIR, help="directory with products.csv")
    parser.add_argument(
        "--attributes", type=Path, default=None,
        help="attributes.csv for the colour slice (analysis only; default: <catalog>/attributes.csv if present)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2,
                        help="encoder threads: torch's intra-op threads, or ONNX batches in flight")
    parser.add_argument("--name", help="report key of this query set (default: file stem minus 'queries_')")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    catalog = load_catalog(args.catalog)
    attributes = args.attributes or (args.catalog / "attributes.csv")
    colours = load_colours(attributes) if attributes.is_file() else None
    encoder = load_encoder(args.checkpoint, threads=args.threads)
    split = (load_queries(args.queries), load_qrels(args.qrels))
    name = args.name or args.queries.stem.removeprefix("queries_")
    report = evaluate_encoder(encoder, catalog, {name: split}, colours, args.batch_size)
    report["checkpoint"] = args.checkpoint
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
