"""Target 4: how cost grows with the index: size, memory, indexing time, query latency, kNN recall.

``python -m bench.performance.scale [--sizes 1000,5000,full] [--synthetic 100000,1000000]
[--candidates 100,200,400,800] [--vectors float,int8] [--graphs 16:128,32:256] [--tiny]``

Real points are the first N products of a fixed shuffle of the catalogue. Synthetic points
reuse the catalogue cyclically with fresh ids and a perturbed vector,
``normalise(v + N(0, sigma^2 I))``, so the vector cloud keeps the catalogue's shape while
every vector is distinct (titles repeat, which BM25 sees as larger posting lists).

Each point, once per vector storage in ``--vectors`` (``float``: float32 HNSW; ``int8``: Lucene
scalar quantisation on either engine; ``int8-rescored``: the same, its kNN leg re-ranked by the
float vectors the index keeps, as the searcher asks for an ``INDEX_VECTORS=int8`` index) and per
HNSW graph in ``--graphs`` (``M:EF_CONSTRUCTION``, as ``INDEX_HNSW`` builds it):
bulk-load with precomputed vectors (time to searchable), force-merge to one segment (timed apart),
size on disk and the bytes an HNSW search reads (the graph plus the vectors it scores, from the
segments' file sizes after a flush), then for each kNN search breadth in ``--candidates``
(``ef_search`` / ``num_candidates``): hybrid latency over the test queries, asked side by side
with BM25 in rotating order, and kNN recall@10 of the hybrid leg (100 neighbours asked, the first
10 kept) against exact (numpy) cosine search. A synthetic point is skipped, with the reason and a
measured extrapolation, when the previous point predicts it would overrun ``--max-minutes``.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

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
    parse_graphs,
    prepare_encoder,
    section_header,
    write_outputs,
)
from bench.performance.engine_index import bulk_load, engine_stack, index_stats
from bench.performance.query import BM25, Mode, measure
from bench.performance.stats import median_summary, paired_ratios
from bench.report import markdown_table
from engines import SearchEngine
from es_mappings import VECTOR_FIELD, HnswGraph
from query_rewriter.knn_breadth import RESCORE_OVERSAMPLE
from query_rewriter.search import HybridSearcher

NOISE_SIGMA = 0.02  # per dimension: noise norm ~0.39, cosine to the source vector ~0.93
CHUNK = 50_000
LEG_DEPTH = 100  # the hybrid kNN leg's k: recall is of the first 10 of its 100
INDEX_PREFIX = "perf-scale"
VECTORS = {"float": False, "int8": True, "int8-rescored": True}  # --vectors name -> quantized
RESCORED = {"int8-rescored": RESCORE_OVERSAMPLE}
"""Vector kinds whose kNN leg re-ranks oversampled hits by the float vectors, as the searcher does for an
index of ``INDEX_VECTORS=int8``; plain ``int8`` shows what the quantised scores alone find."""
SEARCHED_FILES = {False: ("vex", "vec"), True: ("vex", "veq")}
"""Segment files an HNSW search reads: the graph, and the float or the quantised vectors it scores."""
TARGET_RECALL = 0.95
TARGET_HYBRID_P50_MS = 15.0


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


def knn_recall(
    engine: SearchEngine, alias: str, query_vectors: np.ndarray, exact: list[set[str]], candidates: int,
    oversample: float | None = None,
) -> float:
    """Mean recall@10 of the hybrid leg's kNN search (``LEG_DEPTH`` asked with ``candidates``,
    first 10 kept) against ``exact``."""
    hits = []
    for vector, truth in zip(query_vectors, exact):
        body = {**engine.knn_query(VECTOR_FIELD, vector.tolist(), LEG_DEPTH, [], candidates, oversample),
                "_source": False}
        found = [hit["_id"] for hit in engine.search(alias, body)["hits"]["hits"][:10]]
        hits.append(len(truth.intersection(found)) / len(truth))
    return float(np.mean(hits))


def searched_bytes(file_bytes: Mapping[str, int], quantized: bool) -> int:
    """Bytes an HNSW search reads, and so wants in memory: the graph and the vectors it scores."""
    return sum(file_bytes.get(ext, 0) for ext in SEARCHED_FILES[quantized])


def hybrid_label(candidates: int) -> str:
    return f"hybrid, {candidates} candidates"


def measure_point(
    engine: SearchEngine, label: str, docs: Iterator[dict[str, Any]] | list[dict[str, Any]], ids: Sequence[str],
    vectors: np.ndarray, encoder: Encoder, queries: Sequence[str], rounds: int, candidates: Sequence[int],
    vector_kind: str, graph: HnswGraph,
) -> dict[str, Any]:
    """Load one point, then measure size, memory, and latency and recall per breadth; the index is
    deleted afterwards."""
    quantized = VECTORS[vector_kind]
    load = bulk_load(engine, INDEX_PREFIX, docs, encoder.dimension, quantized=quantized, graph=graph)
    stats = index_stats(engine, load.index)
    print(f"{label} {vector_kind} graph {graph}: {load.documents} docs, bulk {load.bulk_s:.1f}s, "
          f"merge {load.merge_s:.1f}s, "
          f"{stats['store_bytes'] / 2**20:.1f} MiB", flush=True)
    oversample = RESCORED.get(vector_kind)
    modes = [Mode(BM25, HybridSearcher.over(engine, encoder, INDEX_PREFIX), "bm25")]
    modes += [Mode(hybrid_label(c), HybridSearcher.over(engine, encoder, INDEX_PREFIX, c, oversample=oversample),
                   "hybrid") for c in candidates]
    latency = measure(modes, queries, rounds)
    query_vectors = encoder.encode_queries(queries)
    exact = [{ids[row] for row in rows} for rows in exact_top(query_vectors, vectors, 10)]
    bm25 = latency["rounds"][BM25]
    curve = [{"candidates": c, "recall_at_10": knn_recall(engine, INDEX_PREFIX, query_vectors, exact, c, oversample),
              "hybrid_ms": median_summary(latency["rounds"][hybrid_label(c)]),
              "hybrid_vs_bm25": paired_ratios(latency["rounds"][hybrid_label(c)], bm25, ["p50", "p99"])}
             for c in candidates]
    engine.delete_index(load.index)
    return {"label": label, "vectors": vector_kind, "graph": str(graph), **stats,
            "searched_bytes": searched_bytes(stats["file_bytes"], quantized),
            "bulk_s": load.bulk_s, "docs_per_s": load.docs_per_s, "merge_s": load.merge_s,
            "bm25_ms": median_summary(bm25), "curve": curve}


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
    base_docs = documents(catalogue_events(args.catalog, catalog), vectors, encoder.model_version, args.catalog)
    queries = list(queries_frame["query"])
    points: list[dict[str, Any]] = []

    def measure_each_storage(label: str, docs: Callable[[], Iterable[dict[str, Any]]], ids: Sequence[str],
                             point_vectors: np.ndarray) -> None:
        for kind, graph in storages(args, len(ids)):
            points.append(measure_point(engine, label, docs(), ids, point_vectors, encoder, queries, args.repeats,
                                        args.candidates, kind, graph))

    with engine_stack(args.engine) as (engine, _):
        # Each storage's mapping with the first graph; points with another differ only in its m and ef_construction.
        mappings = {kind: engine.vector_mapping(encoder.dimension, VECTORS[kind], args.graphs[0])
                    for kind in args.vectors}
        for size in real_sizes(args.sizes, len(catalog)):
            ids = [doc["product_id"] for doc in base_docs[:size]]
            measure_each_storage(f"{size} real", lambda: base_docs[:size], ids, vectors[:size])
        for size in args.synthetic:
            minutes = predicted_minutes(next(p for p in reversed(points) if not p.get("skipped")), size)
            if minutes * len(storages(args, size)) > args.max_minutes:
                print(f"skipping {size}: predicted {minutes:.0f} min per storage > --max-minutes {args.max_minutes}",
                      flush=True)
                points.append({"label": f"{size} synthetic", "documents": size, "skipped": True,
                               "predicted_minutes": minutes * len(storages(args, size))})
                continue
            synthetic = synthetic_vectors(vectors, size)
            ids = [f"syn-{number}" for number in range(size)]
            measure_each_storage(f"{size} synthetic", lambda: synthetic_documents(base_docs, synthetic), ids, synthetic)
    return {"model_version": encoder.model_version, "vector_mappings": mappings,
            "graphs": [str(graph) for graph in args.graphs], "points": points,
            "noise_sigma": NOISE_SIGMA, "queries": len(queries)}


def storages(args: argparse.Namespace, documents: int) -> list[tuple[str, HnswGraph]]:
    """The ``--vectors`` x ``--graphs`` measured at a point of ``documents``: quantised vectors only up to
    ``--quantized-up-to``."""
    return [(kind, graph) for kind in args.vectors for graph in args.graphs
            if not VECTORS[kind] or args.quantized_up_to is None or documents <= args.quantized_up_to]


def real_sizes(sizes: Sequence[str], available: int) -> list[int]:
    """``--sizes`` as numbers, ``full`` meaning the whole catalogue; sizes above it are dropped."""
    numbers = [available if size == "full" else int(size) for size in sizes]
    return [n for n in numbers if n <= available]


def chosen_breadth(point: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The narrowest breadth of a point's curve that reaches the target recall (None if none does)."""
    return next((row for row in point["curve"] if row["recall_at_10"] >= TARGET_RECALL), None)


def render(payload: Mapping[str, Any], info: RunInfo) -> str:
    sizes, curve = [], []
    for point in payload["points"]:
        if point.get("skipped"):
            sizes.append([point["label"], f"skipped: predicted >= {point['predicted_minutes']:.0f} min to load and "
                          f"merge (> {payload['max_minutes']} min budget)", *[""] * 8])
            continue
        per_million = point["searched_bytes"] / point["documents"] * 1_000_000 / 2**20
        graph = point["graph"]
        sizes.append([point["label"], point["vectors"], graph, point["documents"],
                      f"{point['store_bytes'] / 2**20:.1f}",
                      f"{per_million:.0f}", f"{point['bulk_s']:.1f}", f"{point['docs_per_s']:.0f}",
                      f"{point['merge_s']:.1f}", f"{point['bm25_ms']['p50']:.1f}"])
        for row in point["curve"]:
            curve.append([point["label"], point["vectors"], graph, row["candidates"], f"{row['recall_at_10']:.3f}",
                          f"{row['hybrid_ms']['p50']:.1f}", f"{row['hybrid_ms']['p99']:.1f}",
                          f"{row['hybrid_vs_bm25']['p50']:.2f}x", f"{row['hybrid_vs_bm25']['p99']:.2f}x"])
    measured = [p for p in payload["points"] if not p.get("skipped")]
    largest = max(p["documents"] for p in measured)
    verdicts = []
    for point in (p for p in measured if p["documents"] == largest):
        row = chosen_breadth(point)
        if row is None:
            verdicts.append(f"{point['vectors']} vectors, graph {point['graph']}: no breadth measured "
                            f"reaches recall@10 {TARGET_RECALL}")
            continue
        p50 = row["hybrid_ms"]["p50"]
        met = "met" if p50 <= TARGET_HYBRID_P50_MS else "not met"
        verdicts.append(f"{point['vectors']} vectors, graph {point['graph']}: {row['candidates']} candidates, "
                        f"recall@10 {row['recall_at_10']:.3f}, hybrid p50 {p50:.1f} ms: {met}")
    return "\n".join([
        section_header("Target 4: scale curve", info),
        f"{payload['engine']}; vectors `{payload['model_version']}` (384-d); vector mappings "
        f"`{payload['vector_mappings']}` (with the first graph of {payload['graphs']}; the others differ only in m and "
        f"ef_construction). Synthetic points: catalogue vectors + N(0, {payload['noise_sigma']}^2) noise "
        "per dimension, renormalised. Search set: the segment files an HNSW search reads (graph `vex` plus the "
        "float `vec` or quantised `veq` vectors), per million vectors. Latency: median over "
        f"{payload['repeats']} rounds of {payload['queries']} test queries (client-side end to end, hybrid with the "
        "configured query encoder), every breadth asked side by side with BM25; ratios are medians of per-round "
        "ratios. Recall@10: the hybrid leg's kNN search (100 asked, first 10 kept) against exact numpy cosine "
        "search, same vectors. `int8-rescored`: int8 vectors whose kNN leg takes "
        f"{RESCORE_OVERSAMPLE:g}x its hits by the quantised scores and re-ranks them by the float vectors, as the "
        "searcher does for an index of `INDEX_VECTORS=int8`.\n",
        markdown_table(["point", "vectors", "graph m:ef_construction", "documents", "size MiB",
                        "search set MiB per 1M vectors",
                        "bulk+refresh s", "docs/s", "force-merge s", "BM25 p50 ms"], sizes),
        "",
        markdown_table(["point", "vectors", "graph m:ef_construction", "candidates", "kNN recall@10", "hybrid p50 ms",
                        "hybrid p99 ms",
                        "p50 vs BM25", "p99 vs BM25"], curve),
        "",
        f"**Target at {largest} documents: recall@10 >= {TARGET_RECALL} with hybrid p50 <= "
        f"{TARGET_HYBRID_P50_MS:.0f} ms.** " + "; ".join(verdicts) + ".",
    ])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.scale", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--sizes", default="1000,5000,full", help="real catalogue sizes ('full' = all)")
    parser.add_argument("--synthetic", default="100000,1000000", help="synthetic sizes")
    parser.add_argument("--candidates", default="100,200,400,800",
                        help="kNN search breadths (ef_search / num_candidates) to measure at every point")
    parser.add_argument("--vectors", default="float,int8", help=f"vector storages to measure: {list(VECTORS)}")
    parser.add_argument("--graphs", default=str(HnswGraph()),
                        help="HNSW graphs to build at every point, M:EF_CONSTRUCTION, comma-separated")
    parser.add_argument("--quantized-up-to", type=int, default=None,
                        help="measure quantised vectors only at points of at most this many documents")
    parser.add_argument("--max-minutes", type=float, default=15.0,
                        help="skip a synthetic point predicted to take longer (all storages together)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.sizes, args.synthetic = "100,full", "1000"
    args.sizes = args.sizes.split(",")
    args.synthetic = [int(size) for size in args.synthetic.split(",") if size]
    args.candidates = [int(c) for c in args.candidates.split(",") if c]
    args.vectors = [kind for kind in args.vectors.split(",") if kind]
    unknown = sorted(set(args.vectors) - set(VECTORS))
    if unknown:
        parser.error(f"unknown --vectors {unknown}; valid: {list(VECTORS)}")
    args.graphs = parse_graphs(parser, "--graphs", args.graphs)
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
