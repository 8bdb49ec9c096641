"""Target 3, design experiment: how the write path reads its stored vectors back.

``python -m bench.performance.lookup_reads [--events 4000] [--repeats 3] [--engines opensearch,elasticsearch] [--tiny]``

A price change keeps the vector its document already holds (:func:`indexer.pipeline.stored_vectors`):
one ``_mget`` per micro-batch, a third of the time a worker spends on such an event. This loads
``--events`` catalogue documents, with seeded random unit vectors of the encoder's width (the read's
cost depends on how many floats a source holds, not on what they mean), into the production index
layout of each engine. It then reads them back in the workers' batches, every read in turn for each
batch (interleaved, so drift on the shared machine hits all of them alike):

* **whole source**: what the write path sends, ``mget(vectors=True)``: every field, vectors included;
* **filtered to three fields**: ``_source_includes`` of the digest, the model version and the vector;
* **digest and model only**: the same without the vector, the floor for any lookup that must see the
  digest.

It reports the median milliseconds per batch and the median of the per-batch ratios to the whole
source.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bench.performance.common import (
    RunInfo,
    add_common_args,
    bulk_actions,
    catalogue_events,
    documents,
    finish_args,
    load_inputs,
    section_header,
    write_outputs,
)
from bench.performance.engine_index import engine_stack
from bench.relevance_stack import recreate_index
from bench.report import markdown_table
from es_mappings import DIGEST_FIELD, VECTOR_FIELD, IndexNames

INDEX_PREFIX = "perf-lookup"
DIMENSION = 384  # the towers' output width
SHIPPED = "whole source"
READS: dict[str, dict[str, Any]] = {
    SHIPPED: {"vectors": True},
    "filtered to three fields": {"source_includes": [DIGEST_FIELD, "model_version", VECTOR_FIELD]},
    "digest and model only": {"source_includes": [DIGEST_FIELD, "model_version"]},
}
TINY_EVENTS = 256


def timed_rounds(reads: Mapping[str, Callable[[Sequence[str]], Any]], batches: Sequence[Sequence[str]],
                 repeats: int) -> dict[str, list[float]]:
    """Seconds of each read for every batch, ``repeats`` times over; the reads take turns per batch."""
    seconds: dict[str, list[float]] = {label: [] for label in reads}
    for _ in range(repeats):
        for batch in batches:
            for label, read in reads.items():
                started = time.perf_counter()
                read(batch)
                seconds[label].append(time.perf_counter() - started)
    return seconds


def summarize(seconds: Mapping[str, Sequence[float]], baseline: str) -> dict[str, dict[str, float]]:
    """Per read: the median ms per batch, and the median of its per-batch ratios to ``baseline``."""
    return {label: {"ms_per_batch": statistics.median(times) * 1000,
                    "vs_baseline": statistics.median(t / b for t, b in zip(times, seconds[baseline], strict=True))}
            for label, times in seconds.items()}


def measure(kind: str, events: Sequence[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Load ``events`` into one engine's production index layout, then time every read on it."""
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((len(events), DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = documents(events, vectors, "lookup-bench", args.catalog)
    ids = [doc["product_id"] for doc in docs]
    batches = [ids[start:start + args.batch_size] for start in range(0, len(ids), args.batch_size)]
    with engine_stack(kind) as (engine, _):
        names = IndexNames(INDEX_PREFIX)
        recreate_index(engine, names, DIMENSION, engine.text_analyzer())
        engine.bulk(bulk_actions(docs, names.write_alias))
        engine.refresh(names.write_alias)
        reads = {label: (lambda batch, options=options: engine.mget(names.write_alias, batch, realtime=False,
                                                                   **options))
                 for label, options in READS.items()}
        for label, read in reads.items():  # warm up, and check each read returns what it claims
            source, options = read(batches[0])["docs"][0]["_source"], READS[label]
            if (VECTOR_FIELD in source) != bool(options.get("vectors")
                                                or VECTOR_FIELD in options.get("source_includes", ())):
                raise RuntimeError(f"{kind}: read {label!r} returned fields {sorted(source)}")
        seconds = timed_rounds(reads, batches, args.repeats)
    print(f"{kind}: " + ", ".join(f"{label} {statistics.median(times) * 1000:.1f} ms"
                                  for label, times in seconds.items()), flush=True)
    return {"documents": len(docs), "batches": len(batches), "summary": summarize(seconds, SHIPPED)}


def render(payload: dict[str, Any], info: RunInfo) -> str:
    lines = [section_header("Target 3, design experiment: reading stored vectors back", info),
             f"{payload['events']} catalogue documents with seeded random {DIMENSION}-float unit vectors (seed "
             f"{payload['seed']}), read back by `_mget` (not realtime) in batches of {payload['batch_size']}, "
             f"{payload['repeats']} rounds, every read in turn per batch. Ratio: median over batches of each read's "
             "time over the whole source's on the same batch.\n"]
    rows = [[kind, label, f"{row['ms_per_batch']:.2f}", f"{row['vs_baseline']:.2f}x"]
            for kind, result in payload["engines"].items() for label, row in result["summary"].items()]
    lines.append(markdown_table(["engine", "read", "ms per batch (median)", f"vs {SHIPPED}"], rows))
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.lookup_reads",
                                     description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engines", default="opensearch,elasticsearch",
                        help="comma-separated, run one after the other")
    parser.add_argument("--events", type=int, default=4000, help="documents to load and read back")
    parser.add_argument("--batch-size", type=int, default=64, help="the workers' micro-batch (INGEST_BATCH_SIZE)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    return finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.lookup_reads", argv)
    catalog, _ = load_inputs(args)
    events = catalogue_events(args.catalog, catalog.head(TINY_EVENTS if args.tiny else args.events))
    results = {kind: measure(kind, events, args) for kind in args.engines.split(",")}
    payload = {**info.as_dict(), "events": len(events), "seed": args.seed, "batch_size": args.batch_size,
               "repeats": args.repeats, "engines": results}
    write_outputs(args, "lookup-reads", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
