"""Target 4, quantised vectors: kNN recall and dense relevance of int8 vectors, with and without rescoring.

``python -m bench.performance.quantization [--engine opensearch] [--tiny]``

Lucene's int8 scalar quantisation (OpenSearch's ``sq`` encoder, Elasticsearch's ``int8_hnsw``)
searches about a quarter of the memory of float vectors (``bench.performance.scale``), but the
quantised scores reorder close neighbours. Both engines can take ``k`` times an oversampling factor
of hits by the quantised scores and re-rank them by the float vectors the index keeps anyway. This
loads the catalogue twice, with float and with int8 vectors (the same vectors, force-merged), and
asks every test query's kNN leg (top 100, as the searcher asks it) at each setting: the engine's
default breadth, the searcher's breadth, and the searcher's breadth with rescoring. Reported:
recall@10 against exact search over the same vectors, dense nDCG@10 with the catalogue's graded
judgments, and the median kNN request time, every setting interleaved query by query.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Sequence

import numpy as np

from acebert.data import load_qrels
from acebert.evaluate import judged_queries, search
from acebert.metrics import evaluate_run
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
from bench.performance.engine_index import bulk_load, engine_stack
from bench.report import markdown_table
from es_mappings import VECTOR_FIELD, VECTOR_KINDS, is_quantized
from query_rewriter.knn_breadth import candidates_for

INDEX_PREFIX = "perf-quantization"
DEPTH = 100  # the kNN leg's size, as the searcher asks it
OVERSAMPLES = (2.0, 3.0)
Setting = tuple[int | None, float | None]  # (HNSW candidates, rescore oversampling); None: the engine's default / none


def settings(candidates: int) -> list[Setting]:
    """(breadth, oversampling) pairs: the engine's default, the searcher's, and the searcher's rescored."""
    return [(None, None), (candidates, None)] + [(candidates, factor) for factor in OVERSAMPLES]


def recall_at_10(ranked: Sequence[str], exact: Sequence[str]) -> float:
    return len(set(ranked[:10]) & set(exact[:10])) / 10


def run(args: argparse.Namespace) -> dict[str, Any]:
    catalog, queries_frame = load_inputs(args)
    encoder = prepare_encoder(args.encoder)
    vectors = catalogue_vectors(encoder, catalog)
    ids = [str(pid) for pid in catalog["product_id"]]
    queries_frame, qrels = judged_queries(queries_frame, load_qrels(args.qrels), ids)
    query_vectors = encoder.encode_queries(list(queries_frame["query"]))
    query_ids = list(queries_frame["query_id"])
    qrels = {qid: qrels[qid] for qid in query_ids}  # --tiny keeps only the first queries
    exact_runs = search(query_vectors, vectors, ids, DEPTH)
    exact = [list(hits) for hits in exact_runs]
    docs = documents(catalogue_events(args.catalog, catalog), vectors, encoder.model_version, args.catalog)
    candidates = candidates_for(len(ids))
    rows = []
    with engine_stack(args.engine) as (engine, _):
        for kind in VECTOR_KINDS:  # every storage INDEX_VECTORS offers
            load = bulk_load(engine, f"{INDEX_PREFIX}-{kind}", docs, encoder.dimension, quantized=is_quantized(kind))
            runs: dict[Setting, dict[str, dict[str, float]]] = {setting: {} for setting in settings(candidates)}
            times: dict[Setting, list[float]] = {setting: [] for setting in runs}
            for qid, vector in zip(query_ids, query_vectors):
                for setting in runs:
                    body = {**engine.knn_query(VECTOR_FIELD, vector.tolist(), DEPTH, [], *setting), "_source": False}
                    started = time.perf_counter()
                    hits = engine.search(load.index, body)["hits"]["hits"]
                    times[setting].append((time.perf_counter() - started) * 1000)
                    runs[setting][qid] = {h["_id"]: float(h["_score"]) for h in hits}
            for (breadth, oversample), run_ in runs.items():
                rows.append({
                    "vectors": kind, "candidates": breadth, "oversample": oversample,
                    "recall@10": float(np.mean([recall_at_10(list(run_[q]), e) for q, e in zip(query_ids, exact)])),
                    "ndcg@10": evaluate_run(qrels, run_)["ndcg@10"],
                    "knn_ms_p50": statistics.median(times[(breadth, oversample)]),
                })
    exact_ndcg = evaluate_run(qrels, dict(zip(query_ids, exact_runs)))["ndcg@10"]
    return {"engine": args.engine, "encoder": args.encoder, "model_version": encoder.model_version,
            "documents": len(ids), "queries": len(query_ids), "searcher_candidates": candidates,
            "exact_ndcg@10": exact_ndcg, "rows": rows}


def render(payload: dict[str, Any], info: RunInfo) -> str:
    rows = [[r["vectors"], "engine default" if r["candidates"] is None else str(r["candidates"]),
             "–" if r["oversample"] is None else f"{r['oversample']:g}x", f"{r['recall@10']:.3f}",
             f"{r['ndcg@10']:.4f}", f"{r['knn_ms_p50']:.2f}"] for r in payload["rows"]]
    return "\n".join([
        section_header("Target 4, quantised vectors: recall with and without rescoring", info),
        f"{payload['engine']}, {payload['documents']} products, vectors `{payload['model_version']}`, "
        f"{payload['queries']} judged test queries, the kNN leg alone (top {DEPTH}, no sources), every setting "
        f"asked in turn for each query. Recall@10 against exact search over the same vectors; nDCG@10 of "
        f"exact search: {payload['exact_ndcg@10']:.4f}. The searcher's breadth at this size: "
        f"{payload['searcher_candidates']} candidates.\n",
        markdown_table(["vectors", "candidates", "rescore oversampling", "kNN recall@10", "dense nDCG@10",
                        "kNN p50 ms"], rows),
    ])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.quantization",
                                     description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=1)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--qrels", default=None, help="judgments of --queries (default: CATALOG/qrels_test.tsv)")
    args = finish_args(parser.parse_args(argv))
    args.qrels = args.qrels or args.catalog / "qrels_test.tsv"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.quantization", argv)
    payload = {**info.as_dict(), **run(args)}
    write_outputs(args, f"quantization-{args.engine}", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
