"""Target 1: hybrid query latency vs BM25-only, same engine, same index, same queries.

``python -m bench.performance.query [--engines opensearch,elasticsearch] [--repeats 5] [--tiny]``

The full catalogue is bulk-loaded once per engine with vectors precomputed by ``--encoder``.
Each round walks the test queries in a fresh random order; every query is asked in every mode
(BM25 only, and hybrid with each query encoder), in an order that rotates from query to query,
so no mode always runs first or warm. Latency is the client's end to end, as an application
sees it: ``HybridSearcher.search`` (rewrite, query encoding, one ``_msearch``, client-side
blend), timed with ``time.perf_counter``. Percentiles are taken per round; the report quotes
their median over rounds and the hybrid/BM25 ratio measured within each round.

Two more rows split the hybrid cost apart: kNN only (the second leg on its own) and hybrid
with the query vector already cached (:class:`acebert.encoder.CachedQueryEncoder` filled with
every test query before timing: what a repeated query costs when the cache hits). The query
tower is also timed alone, with no engine traffic between calls, because on a 2-core machine
the engine's work right after each answer slows the encoding that follows it.

The hybrid path is also profiled with pyinstrument (torch query tower, then the configured
encoder), and the top of each profile goes into the report.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import pandas as pd

from acebert.encoder import CachedQueryEncoder, Encoder
from bench.performance.common import (
    RunInfo,
    add_common_args,
    catalogue_events,
    catalogue_vectors,
    checkpoint_of,
    documents,
    encoder_variants,
    finish_args,
    load_inputs,
    prepare_encoder,
    section_header,
    variant_label,
    write_outputs,
)
from bench.performance.engine_index import bulk_load, engine_stack, index_stats
from bench.performance.stats import latency_summary, median_summary, paired_ratios, verdict
from bench.report import markdown_table
from engines import SearchEngine
from query_rewriter.knn_breadth import candidates_for
from query_rewriter.search import HybridSearcher, SearchRequest

TARGETS = {"p50": 1.3, "p99": 1.5}
BM25 = "BM25 only"
INDEX_PREFIX = "perf-query"
WARM_UP_QUERIES = 30
PROFILE_QUERIES = 200
PROFILE_LINES = 45


@dataclass(frozen=True)
class Mode:
    """One way of asking a query: a label, the searcher (and its query encoder), the search mode."""

    label: str
    searcher: HybridSearcher
    mode: str

    def ask(self, query: str) -> tuple[float, dict[str, float]]:
        """Client-side latency in ms and the searcher's own timing breakdown."""
        started = time.perf_counter()
        response = self.searcher.search(SearchRequest(query=query, mode=self.mode))  # type: ignore[arg-type]
        return (time.perf_counter() - started) * 1000, response.timings_ms


def hybrid_label(label: str) -> str:
    return f"hybrid, {label} query tower"


def cached_label(label: str) -> str:
    return f"hybrid, {label} query tower, vector cached"


def build_modes(
    engine: SearchEngine, index: str, encoders: dict[str, Encoder], split: str | None = None,
    queries: Sequence[str] = (),
) -> list[Mode]:
    """BM25 only, hybrid with each query encoder, and, for encoder ``split``, kNN only and hybrid
    with a cache already holding the vector of every query in ``queries``.

    The last two split the hybrid time into its parts: the second leg, and the query encoding. The kNN
    leg searches as wide as the searcher does for an index of this size.
    """
    candidates = candidates_for(engine.count(index))
    searchers = {label: HybridSearcher.over(engine, encoder, index, candidates) for label, encoder in encoders.items()}
    first = next(iter(searchers.values()))
    modes = [Mode(BM25, first, "bm25")] + [Mode(hybrid_label(label), s, "hybrid") for label, s in searchers.items()]
    if split is not None:
        cache = CachedQueryEncoder(encoders[split], max_entries=None)
        cache.encode_queries(list(queries))
        modes += [Mode(f"kNN only, {split} query tower", searchers[split], "knn"),
                  Mode(cached_label(split), HybridSearcher.over(engine, cache, index, candidates), "hybrid")]
    return modes


def encode_alone(encoder: Encoder, queries: Sequence[str], rounds: int) -> dict[str, float]:
    """Latency percentiles (ms) of encoding one query at a time with nothing else running."""
    for query in queries[:WARM_UP_QUERIES]:
        encoder.encode_queries([query])
    times = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            encoder.encode_queries([query])
            times.append((time.perf_counter() - started) * 1000)
    return latency_summary(times)


class Asks(Protocol):
    """Anything :func:`measure` can time: a label, and ``ask`` giving latency in ms and a breakdown."""

    label: str

    def ask(self, query: str) -> tuple[float, dict[str, float]]: ...


def measure(modes: Sequence[Asks], queries: Sequence[str], rounds: int, seed: int = 0) -> dict[str, Any]:
    """Per mode: each round's latency summary, and the median breakdown (encode/engine/blend) in ms."""
    rng = random.Random(seed)
    for mode in modes:  # warm-up: connection pool, JIT-ish caches, first-call set-up
        for query in queries[:WARM_UP_QUERIES]:
            mode.ask(query)
    latencies: dict[str, list[list[float]]] = {m.label: [[] for _ in range(rounds)] for m in modes}
    parts: dict[str, dict[str, list[float]]] = {m.label: defaultdict(list) for m in modes}
    for round_ in range(rounds):
        order = list(queries)
        rng.shuffle(order)
        for position, query in enumerate(order):
            shift = position % len(modes)
            for mode in list(modes[shift:]) + list(modes[:shift]):
                ms, timings = mode.ask(query)
                latencies[mode.label][round_].append(ms)
                for part, value in timings.items():
                    parts[mode.label][part].append(value)
        print(f"round {round_ + 1}/{rounds} done", flush=True)
    rounds_summary = {label: [latency_summary(r) for r in per_round] for label, per_round in latencies.items()}
    breakdown = {label: {part: statistics.median(values) for part, values in p.items()} for label, p in parts.items()}
    return {"rounds": rounds_summary, "breakdown": breakdown}


def profile(mode: Mode, queries: Sequence[str]) -> str:
    """The top of a pyinstrument profile of ``mode`` over the queries (tree, by wall time)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for query in queries:
        mode.ask(query)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return "\n".join(text.strip().splitlines()[:PROFILE_LINES])


def run_engine(
    kind: str, args: argparse.Namespace, catalog: pd.DataFrame, queries: list[str], encoders: dict[str, Encoder]
) -> dict[str, Any]:
    """Load the catalogue into one engine, measure every mode, profile the hybrid path.

    The index holds the product vectors of ``--encoder``; each runtime's query tower searches it.
    """
    judged = variant_label(args.encoder)
    product_encoder = encoders[judged]
    vectors = catalogue_vectors(product_encoder, catalog)
    docs = documents(catalogue_events(args.catalog, catalog), vectors, product_encoder.model_version, args.catalog)
    with engine_stack(kind) as (engine, _):
        load = bulk_load(engine, INDEX_PREFIX, docs, product_encoder.dimension)
        stats = index_stats(engine, load.index)
        print(f"{kind}: {load.documents} documents in {load.bulk_s:.1f}s, merged in {load.merge_s:.1f}s", flush=True)
        modes = build_modes(engine, INDEX_PREFIX, encoders, split=judged, queries=queries)
        result = measure(modes, queries, args.repeats)
        alone = encode_alone(product_encoder, queries, args.repeats)
        profile_queries = queries[: min(PROFILE_QUERIES, len(queries))]
        before, after = hybrid_label(next(iter(encoders))), hybrid_label(judged)  # torch first, then the configured one
        profiles = {mode.label: profile(mode, profile_queries) for mode in modes if mode.label in (before, after)}
        analyzer = engine.text_analyzer()
    bm25 = result["rounds"][BM25]
    ratios = {m.label: paired_ratios(result["rounds"][m.label], bm25, ["p50", "p95", "p99"]) for m in modes[1:]}
    return {
        "engine": kind, "analyzer": analyzer, "index": {**stats, "bulk_s": load.bulk_s, "merge_s": load.merge_s},
        "product_vectors": product_encoder.model_version, "queries": len(queries), **result,
        "medians": {label: median_summary(r) for label, r in result["rounds"].items()},
        "ratios": ratios, "profiles": profiles, "profile_queries": len(profile_queries),
        "encode_alone_ms": {"encoder": judged, **alone},
    }


def render_engine(result: dict[str, Any], judged: str) -> str:
    """One engine's latency table, ratio verdicts and profiles."""
    rows = []
    for label, median in result["medians"].items():
        ratio = result["ratios"].get(label, {})
        parts = result["breakdown"][label]
        rows.append([label, f"{median['p50']:.1f}", f"{median['p95']:.1f}", f"{median['p99']:.1f}",
                     *(f"{ratio[k]:.2f}x" if ratio else "1.00x" for k in ("p50", "p95", "p99")),
                     f"{parts.get('encode', 0.0):.2f}", f"{parts.get('engine', 0.0):.2f}", f"{parts.get('blend', 0.0):.2f}"])
    judged_ratio = result["ratios"][judged]
    verdicts = ", ".join(f"{k} {judged_ratio[k]:.2f}x (target <= {limit}x): "
                         f"**{verdict(judged_ratio[k], limit, higher_is_better=False)}**"
                         for k, limit in TARGETS.items())
    index = result["index"]
    text = [
        f"### {result['engine']}\n",
        f"{index['documents']} documents ({index['store_bytes'] / 2**20:.1f} MiB, {index['segments']} segment(s) after "
        f"force-merge), analyzer `{result['analyzer']}`, product vectors `{result['product_vectors']}`; "
        f"{result['queries']} test queries x {len(result['rounds'][BM25])} rounds per mode; depth 100 per leg, "
        "page of 10, min-max blend.\n",
        markdown_table(["mode", "p50 ms", "p95 ms", "p99 ms", "p50 vs BM25", "p95 vs BM25", "p99 vs BM25",
                        "encode ms (median)", "engine ms", "blend ms"], rows),
        f"\nJudged on **{judged}**: {verdicts}.\n",
    ]
    alone = result.get("encode_alone_ms")
    if alone:
        text.append(f"The {alone['encoder']} query tower alone (one query at a time, no engine traffic between "
                    f"calls): p50 {alone['p50']:.2f} ms, p99 {alone['p99']:.2f} ms.\n")
    for label, tree in result["profiles"].items():
        text += [f"\nTop of the pyinstrument profile, {label}, {result['profile_queries']} queries:\n",
                 "```text", tree, "```"]
    return "\n".join(text)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.query", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=5)
    parser.add_argument("--engines", default="opensearch,elasticsearch", help="comma-separated engines, run one at a time")
    return finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.query", argv)
    catalog, queries = load_inputs(args)
    # the query towers to compare: every runtime of the model behind --encoder
    encoders = {label: prepare_encoder(spec) for label, spec in encoder_variants(args.encoder).items()}
    judged = hybrid_label(variant_label(args.encoder))  # the target is judged on the configured encoder
    results = [run_engine(kind, args, catalog, list(queries["query"]), encoders) for kind in args.engines.split(",")]
    payload = {**info.as_dict(), "encoder": args.encoder, "checkpoint": str(checkpoint_of(args.encoder)),
               "judged_mode": judged, "targets": TARGETS, "engines": results}
    markdown = "\n".join([section_header("Target 1: query latency, hybrid vs BM25 only", info),
                          "Client-side end-to-end latency of `HybridSearcher.search` (rewrite, query encoding, one "
                          "`_msearch`, client-side blend), single client, sequential requests.\n",
                          *(render_engine(result, judged) for result in results)])
    write_outputs(args, "query", payload, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
