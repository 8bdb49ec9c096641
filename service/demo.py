"""The main job end to end on an embedded default.

Starts a local OpenSearch (or Elasticsearch) and Redis, a real Celery worker, enqueues the
shipped sample catalogue as product events, waits until it is searchable, and prints hybrid
results next to BM25-only ones for a few queries. Everything it started is stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from devstack import local_stack
from es_mappings import LIVE_PRODUCTS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
QUERIES = ["black watch for men", "women's blue jeans", "running shoes", "red handbag", "sports t-shirt"]


def _cache() -> Path:
    return Path(os.environ.get("ACEBERT_SEARCH_CACHE", Path.home() / ".cache" / "acebert-search"))


def _print_side_by_side(query: str, hybrid, bm25) -> None:
    print(f"\n=== {query!r}  (hybrid {hybrid.timings_ms['total']:.0f} ms, bm25 {bm25.timings_ms['total']:.0f} ms)")
    print(f"    {'hybrid (BM25 + kNN, min-max 0.5/0.5)':<58} | BM25 only")
    for rank in range(max(len(hybrid.hits), len(bm25.hits))):
        left = hybrid.hits[rank] if rank < len(hybrid.hits) else None
        right = bm25.hits[rank] if rank < len(bm25.hits) else None
        legs = "+".join(sorted(left.ranks)) if left else ""
        left_text = f"{left.source.get('title', '')[:44]} [{legs}]" if left else ""
        right_text = right.source.get("title", "")[:44] if right else ""
        print(f"{rank + 1:2d}. {left_text:<58} | {right_text}")


def run(args: argparse.Namespace) -> None:
    from indexer.catalog import catalog_events
    from query_rewriter.search import SearchRequest
    from system import System

    catalog = Path(args.catalog or os.environ.get("DEMO_CATALOG") or SAMPLE)
    run_dir = _cache() / "demo-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    with local_stack(run_dir, engines=(args.engine_kind,)) as stack:
        settings = stack.settings(index_prefix="demo", image_root=catalog, queue_prefix="demo",
                                  encoder=os.environ.get("ACEBERT_ENCODER", "minilm"))
        # Two pool processes with one encoder thread each (the stack's default).
        worker = stack.start_worker(settings, "demo", concurrency=2)
        print(f"worker ready in {worker.started_in_s:.1f}s (log: {worker.log})")
        system = System(settings)
        system.ensure_index()

        events = catalog_events(catalog)
        t = time.perf_counter()
        result = system.producer.enqueue(events)
        print(f"enqueued {result.queued} product events from {catalog} ({len(result.parked)} parked); "
              f"worker log: {worker.log}")
        system.queue.wait_drained(timeout_s=1800, check=worker.check_alive)
        system.engine.refresh(system.names.read_alias)
        seconds = time.perf_counter() - t
        count = system.engine.count(system.names.read_alias, LIVE_PRODUCTS)
        print(f"{count} products searchable after {seconds:.1f}s "
              f"({result.queued / seconds:.0f} events/s, including the workers' model start-up)")
        for letter in system.queue.dead_letters():
            print(f"dead letter {letter.id}: {letter.error}")

        for query in QUERIES:
            hybrid = system.searcher.search(SearchRequest(query=query, size=5))
            bm25 = system.searcher.search(SearchRequest(query=query, size=5, mode="bm25"))
            _print_side_by_side(query, hybrid, bm25)
        system.close()
