"""Target 4: how cost grows with the index: size on disk, indexing time, query latency, kNN recall.

``python -m bench.performance.scale [--sizes 1000,5000,full] [--synthetic 100000,1000000] [--tiny]``

Real points are the first N products of a fixed shuffle of the catalogue. Synthetic points
reuse the catalogue cyclically with fresh ids and a perturbed vector,
``normalise(v + N(0, sigma^2 I))``, so the vector cloud keeps the catalogue's shape while
every vector is distinct (titles repeat, which BM25 sees as larger posting lists).

Each point: bulk-load with precomputed vectors (time to searchable), force-merge to one
segment (timed apart), size on disk (``_stats`` after a flush), BM25 and hybrid latency over
the test queries, and kNN recall@10 against exact (numpy) cosine search with ``k`` = 10 and
``k`` = 100 (the hybrid leg's depth). A synthetic point is skipped, with the reason and a
measured extrapolation, when the previous point predicts it would overrun ``--max-minutes``.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from acebert.encoder import Encoder
from bench.performance.common import (
    RunInfo,
    add_common_args,
    catalogue_events,
    catalogue_vectors,
    documents,
    finish_args,
    load_inputs,
    prepare_encoder,
    section_header,
    write_outputs,
)
from bench.performance.engine_index import bulk_load, engine_stack, index_stats
from bench.performance.query import BM25, build_modes, measure
from bench.performance.stats import median_summary
from bench.report import markdown_table
from engines import SearchEngine
from es_mappings import VECTOR_FIELD

NOISE_SIGMA = 0.02  # per dimension: noise norm ~0.39, cosine to the source vector ~0.93
CHUNK = 50_000
RECALL_KS = (10, 100)
INDEX_PREFIX = "perf-scale"


def synthetic_vectors(base: np.ndarray, count: int, sigma: float = NOISE_SIGMA, seed: int = 0) -> np.ndarray:
    """``count`` unit vectors: row ``i`` is ``base[i % len(base)]`` plus Gaussian noise, renormalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, CHUNK):
        rows = np.arange(start, min(count, start + CHUNK)) % len(base)
        block = base[rows] + rng.normal(0.0, sigma, (len(rows), base.shape[1])).astype(np.float32)
        out[start : start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def synthetic_documents(base_docs: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> Iterator[dict[str, Any]]:
    """Catalogue documents reused cyclically under ids ``syn-<i>`` with vector ``i`` (streamed)."""
    for number, vector in enumerate(vectors):
        yield {**base_docs[number % len(base_docs)], "product_id": f"syn-{number}", VECTOR_FIELD: vector.tolist()}


def exact_top(query_vectors: np.ndarray, vectors: np.ndarray, k: int) -> list[set[int]]:
    """Row numbers of the exact top-``k`` cosine neighbours of each query (vectors are normalised)."""
    top = []
    for start in range(0, len(query_vectors), 64):  # bounded memory at a million vectors
        scores = query_vectors[start : start + 64] @ vectors.T
        top += [set(row) for row in np.argpartition(-scores, k - 1, axis=1)[:, :k]]
    return top


def knn_recall(engine: SearchEngine, alias: str, query_vectors: np.ndarray, exact: list[set[str]], k: int) -> float:
    """Mean recall@10 of the engine's kNN (``k`` candidates, first 10 kept) against ``exact``."""
    hits = []
    for vector, truth in zip(query_vectors, exact):
        body = {**engine.knn_query(VECTOR_FIELD, vector.tolist(), k, []), "_source": False}
        found = [hit["_id"] for hit in engine.search(alias, body)["hits"]["hits"][:10]]
        hits.append(len(truth.intersection(found)) / len(truth))
    return float(np.mean(hits))


def measure_point(
    engine: SearchEngine, label: str, docs: Iterator[dict[str, Any]] | list[dict[str, Any]], ids: Sequence[str],
    vectors: np.ndarray, encoder: Encoder, queries: Sequence[str], rounds: int,
) -> dict[str, Any]:
    """Load one point, then measure size, latency and recall; the index is deleted afterwards."""
    load = bulk_load(engine, INDEX_PREFIX, docs, encoder.dimension)
    stats = index_stats(engine, load.index)
    print(f"{label}: {load.documents} docs, bulk {load.bulk_s:.1f}s, merge {load.merge_s:.1f}s, "
          f"{stats['store_bytes'] / 2**20:.1f} MiB", flush=True)
    latency = measure(build_modes(engine, INDEX_PREFIX, {"configured": encoder}), queries, rounds)
    query_vectors = encoder.encode_queries(queries)
    exact = [{ids[row] for row in rows} for rows in exact_top(query_vectors, vectors, 10)]
    recall = {f"k={k}": knn_recall(engine, INDEX_PREFIX, query_vectors, exact, k) for k in RECALL_KS}
    engine.delete_index(load.index)
    return {"label": label, **stats, "bulk_s": load.bulk_s, "docs_per_s": load.docs_per_s, "merge_s": load.merge_s,
            "latency_ms": {mode: median_summary(r) for mode, r in latency["rounds"].items()},
            "recall_at_10": recall}


def predicted_minutes(previous: Mapping[str, Any], size: int) -> float:
    """Load + merge time of ``size`` documents extrapolated from the previous point.

    HNSW insertion costs about ``log n`` per vector, so time grows as ``n log n``; the bulk
    transfer itself is linear, so this is the optimistic side of the estimate.
    """
    done = previous["documents"]
    seconds = (previous["bulk_s"] + previous["merge_s"]) * (size * math.log(size)) / (done * math.log(done))
    return seconds / 60


def run(args: argparse.Namespace) -> dict[str, Any]:
    catalog, queries_frame = load_inputs(args)
    encoder = prepare_encoder(args.encoder)
    order = np.random.default_rng(0).permutation(len(catalog))  # "first N" of a fixed shuffle
    vectors = catalogue_vectors(encoder, catalog)[order]
    catalog = catalog.iloc[order].reset_index(drop=True)
    base_docs = documents(catalogue_events(args.catalog, catalog), vectors, encoder.model_version)
    queries = list(queries_frame["query"])
    points: list[dict[str, Any]] = []
    with engine_stack(args.engine) as (engine, _):
        mapping = engine.vector_mapping(encoder.dimension)
        for size in real_sizes(args.sizes, len(catalog)):
            ids = [doc["product_id"] for doc in base_docs[:size]]
            points.append(measure_point(engine, f"{size} real", base_docs[:size], ids, vectors[:size], encoder,
                                        queries, args.repeats))
        for size in args.synthetic:
            minutes = predicted_minutes(points[-1], size)
            if minutes > args.max_minutes:
                print(f"skipping {size}: predicted {minutes:.0f} min > --max-minutes {args.max_minutes}", flush=True)
                points.append({"label": f"{size} synthetic", "documents": size, "skipped": True,
                               "predicted_minutes": minutes})
                continue
            synthetic = synthetic_vectors(vectors, size)
            ids = [f"syn-{number}" for number in range(size)]
            points.append(measure_point(engine, f"{size} synthetic", synthetic_documents(base_docs, synthetic), ids,
                                        synthetic, encoder, queries, args.repeats))
            del synthetic
    return {"model_version": encoder.model_version, "vector_mapping": mapping, "points": points,
            "noise_sigma": NOISE_SIGMA, "queries": len(queries)}


def real_sizes(sizes: Sequence[str], available: int) -> list[int]:
    """``--sizes`` as numbers, ``full`` meaning the whole catalogue; sizes above it are dropped."""
    numbers = [available if size == "full" else int(size) for size in sizes]
    return [n for n in numbers if n <= available]


def render(payload: Mapping[str, Any], info: RunInfo) -> str:
    rows = []
    for point in payload["points"]:
        if point.get("skipped"):
            rows.append([point["label"], f"skipped: predicted >= {point['predicted_minutes']:.0f} min to load and "
                         f"merge (> {payload['max_minutes']} min budget)", *[""] * 8])
            continue
        latency, recall = point["latency_ms"], point["recall_at_10"]
        hybrid = next(mode for mode in latency if mode != BM25)
        rows.append([point["label"], point["documents"], f"{point['store_bytes'] / 2**20:.1f}", f"{point['bulk_s']:.1f}",
                     f"{point['docs_per_s']:.0f}", f"{point['merge_s']:.1f}", f"{latency[BM25]['p50']:.1f}",
                     f"{latency[hybrid]['p50']:.1f}", f"{recall['k=10']:.3f}", f"{recall['k=100']:.3f}"])
    mapping = payload["vector_mapping"]
    return "\n".join([
        section_header("Target 4: scale curve", info),
        f"{payload['engine']}; vectors `{payload['model_version']}` (384-d float32); vector mapping "
        f"`{mapping}`. Synthetic points: catalogue vectors + N(0, {payload['noise_sigma']}^2) noise per dimension, "
        f"renormalised. Latency: median over {payload['repeats']} rounds of {payload['queries']} test queries "
        "(client-side end to end, hybrid with the configured query encoder). Recall@10: the engine's kNN (k "
        "candidates, first 10) against exact numpy cosine search, same vectors.\n",
        markdown_table(["point", "documents", "size MiB", "bulk+refresh s", "docs/s", "force-merge s", "BM25 p50 ms",
                        "hybrid p50 ms", "recall@10 (k=10)", "recall@10 (k=100)"], rows),
    ])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.scale", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--sizes", default="1000,5000,full", help="real catalogue sizes ('full' = all)")
    parser.add_argument("--synthetic", default="100000,1000000", help="synthetic sizes")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="skip a synthetic point predicted to take longer")
    args = parser.parse_args(argv)
    if args.tiny:
        args.sizes, args.synthetic = "100,full", "1000"
    args.sizes = args.sizes.split(",")
    args.synthetic = [int(size) for size in args.synthetic.split(",") if size]
    return finish_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.scale", argv)
    results = run(args)
    payload = {**info.as_dict(), "engine": args.engine, "encoder": args.encoder, "repeats": args.repeats,
               "max_minutes": args.max_minutes, **results}
    write_outputs(args, "scale", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
