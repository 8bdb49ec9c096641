"""The main job end to end on an embedded default.

Starts a local OpenSearch (or Elasticsearch) and Redis, a real Celery worker, enqueues the
shipped sample catalogue as product events, waits until it is searchable, and prints hybrid
results next to BM25-only ones for a few queries. Everything it started is stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import time
from pathlib import Path

from devstack import start_elasticsearch, start_opensearch, start_redis
from devstack.worker import start_worker

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
QUERIES = ["black watch for men", "women's blue jeans", "running shoes", "red handbag", "sports t-shirt"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    from query_rewriter.search import SearchRequest
    from service.runtime import Runtime
    from settings import Settings
    from workers.producer import enqueue

    catalog = Path(args.catalog or os.environ.get("DEMO_CATALOG") or SAMPLE)
    run_dir = _cache() / "demo-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o755)
    started = []
    worker = None
    try:
        redis = start_redis(run_dir / "redis", port=_free_port())
        started.append(redis)
        start = start_opensearch if args.engine_kind == "opensearch" else start_elasticsearch
        engine_service = start(run_dir / args.engine_kind, _free_port(), _free_port())
        started.append(engine_service)
        print(f"{args.engine_kind} up at {engine_service.url} in {engine_service.started_in_s:.1f}s; "
              f"redis at {redis.url}")

        settings = Settings(
            engine=args.engine_kind, engine_url=engine_service.url, redis_url=redis.url,
            index_prefix="demo", image_root=catalog, queue_prefix="demo",
            encoder=os.environ.get("ACEBERT_ENCODER", "minilm"),
        )
        log = run_dir / "worker.log"
        # Two pool processes with one torch thread each: two threads per process would fight
        # for the same two cores.
        worker = start_worker({**settings.to_env(), "ACEBERT_TORCH_THREADS": "1"}, "demo", log, concurrency=2)
        print(f"worker ready in {worker.started_in_s:.1f}s (log: {log})")
        from indexer.catalog import catalog_events
        from indexer.indices import ensure_index
        from workers.app import app

        app.conf.broker_url = settings.redis_url
        runtime = Runtime(settings)
        ensure_index(runtime.engine, runtime.names, runtime.encoder.dimension)

        events = catalog_events(catalog)
        t = time.perf_counter()
        result = enqueue(events, runtime.queue, settings.batch_size)
        print(f"enqueued {result.queued} product events from {catalog} ({len(result.parked)} parked); "
              f"worker log: {log}")
        while runtime.queue.pending() or runtime.queue.in_flight():
            if worker.process.poll() is not None:
                raise SystemExit(f"the worker exited; see {log}")
            time.sleep(0.5)
        runtime.engine.refresh(runtime.names.read_alias)
        seconds = time.perf_counter() - t
        count = runtime.engine.count(runtime.names.read_alias)
        print(f"{count} products searchable after {seconds:.1f}s "
              f"({result.queued / seconds:.0f} events/s, including the workers' model start-up)")
        for letter in runtime.queue.dead_letters():
            print(f"dead letter {letter.id}: {letter.error}")

        for query in QUERIES:
            hybrid = runtime.searcher.search(SearchRequest(query=query, size=5))
            bm25 = runtime.searcher.search(SearchRequest(query=query, size=5, mode="bm25"))
            _print_side_by_side(query, hybrid, bm25)
    finally:
        if worker is not None:
            worker.stop()
        for service in reversed(started):
            service.stop()
