"""Target 3: ingestion, from enqueue to searchable, through Redis and two real Celery workers.

``python -m bench.performance.ingestion [--rate 50] [--duration 60] [--repeats 3] [--graph 16:128] [--updates]
[--tiny]``

Three measurements, on one engine, with the production write path (producer -> Redis ->
``workers.drain`` -> encoder -> bulk with external versions):

* **sustained**: every catalogue product enqueued at once; events/s from the first enqueue
  until the last one is searchable (visible to ``_count`` after a refresh). With ``--updates``,
  each repeat then enqueues every product again as a price change (the next version, the same
  title, category and photo) and times it the same way, until every product shows the new version;
* **offered load**: ``--rate`` events/s for ``--duration`` s, each event enqueued alone at its
  scheduled time; a poller asks the engine (``ids`` query, every ``--poll`` s) which are
  searchable and records each event's enqueue-to-searchable delay. Target: p95 < 2 s;
* **ceiling**: the same documents bulk-written with their vectors precomputed (no Redis, no
  encoding): what the engine itself can absorb on this machine. Reported as the ratio
  sustained / ceiling. With ``--updates``, their price changes are then bulk-written the same
  way over them: the ceiling of that work, since replacing a document costs the engine more
  than adding one.

Workers: two processes, concurrency 1, one encoder thread each (``ACEBERT_ENCODER_THREADS=1``), so they
share the two cores with the engine, as a small deployment would.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Mapping, Sequence

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
    price_update,
    section_header,
    write_outputs,
)
from bench.performance.engine_index import bulk_load, bulk_write, engine_stack
from bench.performance.stats import latency_summary, ratio, throughput_summary, verdict
from bench.relevance_stack import recreate_index
from bench.report import markdown_table
from engines import SearchEngine
from es_mappings import HnswGraph, IndexLayout, IndexNames
from system import System
from workers.producer import Producer

# issue #14 part 2: p95 < 1.5 s at 200 events/s (issue #6 asked < 2 s at 50)
TARGET_P95_S = 1.5
TARGET_RATE = 200.0
WORKERS = 2
INDEX_PREFIX = "perf-ingest"
CEILING_PREFIX = "perf-ceiling"
IDS_PER_POLL = 5000
TINY_EVENTS = 200
WARM_UP_EVENTS = 8


def searchable(engine: SearchEngine, alias: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` a search sees now (refreshed into a searchable segment)."""
    found: set[str] = set()
    for start in range(0, len(ids), IDS_PER_POLL):
        chunk = list(ids[start : start + IDS_PER_POLL])
        body = {"size": len(chunk), "_source": False, "query": {"ids": {"values": chunk}}}
        found.update(hit["_id"] for hit in engine.search(alias, body)["hits"]["hits"])
    return found


def wait_searchable(
    engine: SearchEngine, alias: str, prefix: str, total: int, poll_s: float, timeout_s: float, version: int = 1
) -> float:
    """Block until ``total`` documents with ids starting ``prefix`` are searchable at ``version`` or
    later; returns the time."""
    deadline = time.monotonic() + timeout_s
    query = {"bool": {"filter": [{"prefix": {"product_id": prefix}}, {"range": {"event_version": {"gte": version}}}]}}
    while engine.count(alias, query) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {engine.count(alias, query)} of {total} events searchable after {timeout_s}s")
        time.sleep(poll_s)
    return time.perf_counter()


def warm_up(system: System, events: list[dict[str, Any]], poll_s: float) -> None:
    """A few events one by one (so both workers get some) until searchable: first-task set-up is not measured."""
    for event in events:
        system.producer.enqueue([event])
    wait_searchable(system.engine, system.names.read_alias, "warm-", len(events), poll_s, timeout_s=300)


def sustained(system: System, events: list[dict[str, Any]], prefix: str, poll_s: float) -> dict[str, float]:
    """Enqueue every event at once; events/s until the last one is searchable (at its version)."""
    started = time.perf_counter()
    system.producer.enqueue(events)
    enqueued = time.perf_counter()
    done = wait_searchable(system.engine, system.names.read_alias, prefix, len(events), poll_s,
                           timeout_s=max(600, len(events)), version=min(event["version"] for event in events))
    return {"events": len(events), "seconds": done - started, "events_per_s": len(events) / (done - started),
            "enqueue_s": enqueued - started}


def warm_up_pass(system: System, events: list[dict[str, Any]], updates: bool, poll_s: float) -> list[dict[str, float]]:
    """``events`` as one untimed sustained pass (then their price changes, with ``updates``).

    Why: the engine's and the workers' first minutes are their slowest (JIT, caches, the first
    segments), and every run's first repeat was its slowest before this pass."""
    passes = [sustained(system, events, "w-", poll_s)]
    if updates:
        passes.append(sustained(system, [price_update(event) for event in events], "w-", poll_s))
    print("warm-up pass, not timed: " + ", ".join(f"{r['events_per_s']:.1f}" for r in passes) + " events/s",
          flush=True)
    return passes


class PacedProducer(threading.Thread):
    """Enqueues one event at a time on a fixed schedule, recording when each was handed over."""

    def __init__(self, producer: Producer, events: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.producer, self.events, self.rate = producer, events, rate
        self.sent: dict[str, float] = {}
        self.seconds = 0.0

    def run(self) -> None:
        start = time.perf_counter()
        for number, event in enumerate(self.events):
            delay = start + number / self.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.sent[event["product_id"]] = time.perf_counter()
            self.producer.enqueue([event])
        self.seconds = time.perf_counter() - start


def offered_load(
    system: System, events: list[dict[str, Any]], rate: float, poll_s: float, drain_timeout_s: float
) -> dict[str, Any]:
    """Enqueue-to-searchable delay of each event under a fixed offered rate."""
    producer = PacedProducer(system.producer, events, rate)
    delays: dict[str, float] = {}
    producer.start()
    deadline = None
    while len(delays) < len(events):
        waiting = [pid for pid in list(producer.sent) if pid not in delays]
        seen_at = time.perf_counter()
        for pid in searchable(system.engine, system.names.read_alias, waiting) if waiting else ():
            delays[pid] = seen_at - producer.sent[pid]
        if not producer.is_alive():
            deadline = deadline or time.monotonic() + drain_timeout_s
            if time.monotonic() > deadline:
                break
        time.sleep(poll_s)
    producer.join()
    values = list(delays.values())
    return {"events": len(events), "offered_per_s": len(events) / producer.seconds, "searchable": len(values),
            "lost": len(events) - len(values), "delay_s": latency_summary(values) if values else None,
            "max_delay_s": max(values, default=None)}


def ceiling(
    engine: SearchEngine, docs: list[dict[str, Any]], dimension: int, graph: HnswGraph,
    updates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The same documents bulk-written with vectors precomputed into a fresh index; then ``updates``
    (their next versions, the same vectors) over them, timed apart."""
    load = bulk_load(engine, CEILING_PREFIX, docs, dimension, merge=False, graph=graph)
    result: dict[str, Any] = {"events": load.documents, "seconds": load.bulk_s, "events_per_s": load.docs_per_s}
    if updates is not None:
        written, seconds = bulk_write(engine, load.index, updates)
        result["updates"] = {"events": written, "seconds": seconds, "events_per_s": written / seconds}
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, run the three measurements, stop everything."""
    catalog, _ = load_inputs(args)
    if args.tiny:
        catalog = catalog.head(TINY_EVENTS)
    encoder = prepare_encoder(args.encoder)
    vectors = catalogue_vectors(encoder, catalog)
    load_events = int(args.rate * args.duration)
    if load_events > len(catalog):
        raise ValueError(f"--rate x --duration = {load_events} events, but the catalogue has {len(catalog)}")
    results: dict[str, Any] = {"sustained": [], "ceiling": [], "sustained_updates": []}
    with engine_stack(args.engine) as (engine, stack):
        settings = stack.settings(index_prefix=INDEX_PREFIX, encoder=args.encoder, image_root=args.catalog,
                                  batch_size=args.batch_size, queue_prefix=INDEX_PREFIX)
        system = System(settings)
        names = IndexNames(INDEX_PREFIX)

        def fresh_index() -> None:  # the workers' ensure_index finds it behind the write alias
            index = recreate_index(engine, names, encoder.dimension, engine.text_analyzer(), graph=args.graph)
            engine.update_settings(index, {"refresh_interval": args.refresh_interval})

        fresh_index()
        workers = [stack.start_worker(settings, f"perf-{number}") for number in range(1, WORKERS + 1)]
        print(f"worker logs in {stack.run_dir}", flush=True)
        results["worker_start_s"] = [w.started_in_s for w in workers]
        warm_up(system, catalogue_events(args.catalog, catalog.head(WARM_UP_EVENTS), "warm-"), args.poll)
        if args.warm_up:
            results["warm_up"] = warm_up_pass(system, catalogue_events(args.catalog, catalog.head(args.warm_up), "w-"),
                                              args.updates, args.poll)
        for repeat in range(args.repeats):
            fresh_index()
            events = catalogue_events(args.catalog, catalog, f"s{repeat}-")
            results["sustained"].append(sustained(system, events, f"s{repeat}-", args.poll))
            print(f"sustained {repeat + 1}/{args.repeats}: {results['sustained'][-1]['events_per_s']:.1f} events/s",
                  flush=True)
            if args.updates:
                updates = [price_update(event) for event in events]
                results["sustained_updates"].append(sustained(system, updates, f"s{repeat}-", args.poll))
                print(f"price updates {repeat + 1}/{args.repeats}: "
                      f"{results['sustained_updates'][-1]['events_per_s']:.1f} events/s", flush=True)
        fresh_index()
        events = catalogue_events(args.catalog, catalog.head(load_events), "load-")
        results["offered_load"] = offered_load(system, events, args.rate, args.poll, drain_timeout_s=120)
        print(f"offered load: {results['offered_load']['delay_s']}", flush=True)
        for worker in workers:
            stack.stop_worker(worker)
        results["dead_letters"] = len(system.queue.dead_letters())
        for repeat in range(args.repeats):
            events = catalogue_events(args.catalog, catalog, f"c{repeat}-")
            docs = documents(events, vectors, encoder.model_version, args.catalog)
            updates = (documents([price_update(event) for event in events], vectors, encoder.model_version,
                                 args.catalog) if args.updates else None)
            results["ceiling"].append(ceiling(engine, docs, encoder.dimension, args.graph, updates))
            print(f"ceiling {repeat + 1}/{args.repeats}: {results['ceiling'][-1]['events_per_s']:.1f} events/s", flush=True)
    results["model_version"] = encoder.model_version
    return results


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Medians over repeats, the sustained/ceiling ratio, and the verdict on the delay target."""
    worker_rate = throughput_summary([r["events_per_s"] for r in results["sustained"]])
    bulk_rate = throughput_summary([r["events_per_s"] for r in results["ceiling"]])
    load = results["offered_load"]
    p95 = load["delay_s"]["p95"] if load["delay_s"] else float("inf")
    updates = results.get("sustained_updates") or []
    update_rate = throughput_summary([r["events_per_s"] for r in updates]) if updates else None
    update_bulk = (throughput_summary([r["updates"]["events_per_s"] for r in results["ceiling"]])
                   if updates else None)
    return {"sustained_events_per_s": worker_rate, "ceiling_events_per_s": bulk_rate,
            "ratio_to_ceiling": ratio(worker_rate["median"], bulk_rate["median"]),
            "sustained_updates_per_s": update_rate, "updates_ceiling_per_s": update_bulk,
            "updates_ratio_to_ceiling": ratio(update_rate["median"], update_bulk["median"]) if updates else None,
            "p95_delay_s": p95, "p95_verdict": verdict(p95, TARGET_P95_S, higher_is_better=False) if not load["lost"]
            else "not met"}


def render(payload: Mapping[str, Any], info: RunInfo) -> str:
    summary, load = payload["summary"], payload["results"]["offered_load"]
    sustained_, ceiling_ = summary["sustained_events_per_s"], summary["ceiling_events_per_s"]
    delay = load["delay_s"] or {}
    rows = [
        ["sustained, 2 workers (enqueue all -> all searchable)", f"{sustained_['median']:.1f}",
         f"{sustained_['min']:.1f}-{sustained_['max']:.1f}", f"{summary['ratio_to_ceiling']:.2f}x"],
        ["ceiling: bulk with precomputed vectors", f"{ceiling_['median']:.1f}",
         f"{ceiling_['min']:.1f}-{ceiling_['max']:.1f}", "1.00x"],
    ]
    if (updates := summary.get("sustained_updates_per_s")) is not None:
        bulk = summary["updates_ceiling_per_s"]
        rows += [["sustained, the same products again as price changes (vectors reused)",
                  f"{updates['median']:.1f}", f"{updates['min']:.1f}-{updates['max']:.1f}",
                  f"{summary['updates_ratio_to_ceiling']:.2f}x of the next row"],
                 ["ceiling: the price changes bulk-written over the documents, vectors precomputed",
                  f"{bulk['median']:.1f}", f"{bulk['min']:.1f}-{bulk['max']:.1f}", "1.00x"]]
    delays = [[f"{load['offered_per_s']:.1f}", load["events"], load["searchable"], load["lost"],
               *(f"{delay[k]:.2f}" if delay else "-" for k in ("p50", "p95", "p99")),
               f"{load['max_delay_s']:.2f}" if load["max_delay_s"] is not None else "-"]]
    return "\n".join([
        section_header("Target 3: ingestion, enqueue to searchable", info),
        f"{payload['engine']}, {WORKERS} Celery workers (concurrency 1, 1 thread each), encoder "
        f"`{payload['encoder']}` ({payload['results']['model_version']}), batch {payload['batch_size']}, "
        f"refresh interval {payload.get('refresh_interval', '1s')}, "
        f"HNSW graph {payload['graph']} (m:ef_construction), "
        f"{payload['events']} catalogue events per sustained run, "
        f"{payload['repeats']} repeats after an untimed pass of {payload.get('warm_up', 0)} events"
        f"{' and their price changes' if payload['summary'].get('sustained_updates_per_s') else ''}; "
        f"searchable = visible to a search (polled every {payload['poll_s']} s).\n",
        markdown_table(["measurement", "events/s (median)", "min-max", "vs ceiling"], rows),
        f"\nOffered load: one event enqueued every {1 / payload['rate']:.3f} s for {payload['duration_s']} s:\n",
        markdown_table(["offered events/s", "events", "searchable", "lost", "delay p50 s", "p95 s", "p99 s", "max s"],
                       delays),
        f"\n**Target: p95 enqueue-to-searchable delay < {TARGET_P95_S} s at {payload['rate']} events/s: "
        f"p95 {summary['p95_delay_s']:.2f} s, {summary['p95_verdict']}. Sustained / ceiling: "
        f"{summary['ratio_to_ceiling']:.2f}x.** Dead letters: {payload['results']['dead_letters']}.\n",
    ])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.ingestion", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="offered load, events/s")
    parser.add_argument("--duration", type=float, default=60.0, help="offered load duration, s")
    parser.add_argument("--poll", type=float, default=0.05, help="searchability poll interval, s")
    parser.add_argument("--batch-size", type=int, default=64, help="worker micro-batch (INGEST_BATCH_SIZE)")
    parser.add_argument("--graph", default=str(HnswGraph()),
                        help="HNSW graph of the indices written, M:EF_CONSTRUCTION (INDEX_HNSW)")
    parser.add_argument("--refresh-interval", default=IndexLayout().refresh_interval,
                        help="the written indices' refresh interval (INDEX_REFRESH_INTERVAL; default %(default)s)")
    parser.add_argument("--updates", action="store_true",
                        help="after each sustained run, time the same products again as price changes")
    parser.add_argument("--warm-up", type=int, default=2000, metavar="EVENTS",
                        help="an untimed sustained pass of this many events first (default %(default)s; 0: none)")
    args = parser.parse_args(argv)
    graphs = parse_graphs(parser, "--graph", args.graph)
    if len(graphs) != 1:
        parser.error(f"--graph takes one M:EF_CONSTRUCTION, not {args.graph!r}")
    args.graph = graphs[0]
    if args.tiny:
        args.rate, args.duration, args.warm_up = 10.0, 5.0, min(args.warm_up, 20)
    return finish_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.ingestion", argv)
    results = run(args)
    payload = {**info.as_dict(), "engine": args.engine, "encoder": args.encoder, "batch_size": args.batch_size,
               "graph": str(args.graph), "refresh_interval": args.refresh_interval, "rate": args.rate,
               "duration_s": args.duration, "poll_s": args.poll,
               "repeats": args.repeats, "warm_up": args.warm_up,
               "events": results["sustained"][0]["events"], "results": results}
    payload["summary"] = summarize(results)
    write_outputs(args, "ingestion", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
