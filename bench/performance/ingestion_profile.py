"""Target 3, where a worker's time goes: the drain task's batch function, stage by stage.

``python -m bench.performance.ingestion_profile [--events 4000] [--repeats 3] [--updates] [--tiny]``

A worker's drain task hands each micro-batch to :func:`indexer.pipeline.index_events`. This runs
that same function in-process over catalogue events, in the workers' batch size, with the encoder
sized as each worker sizes it (one thread) and a real engine with the production index settings,
and splits every batch's wall time by timing the calls it makes:

* **lookup**: :func:`indexer.pipeline.stored_vectors` (the ``_mget`` of the batch's stored digests and vectors);
* **image read**: :func:`indexer.documents.encoder_input` (path check and file read);
* **picture check**: :func:`indexer.image_files.check_picture` (the full decode, only for a picture going to the tower);
* **featurize**: image decode and tokenising (the encoder's ``featurizer.products``);
* **tower**: the rest of ``encode_products`` (the ONNX or torch graph);
* **bulk**: :meth:`engines.SearchEngine.bulk` (JSON, the HTTP round trip, the engine indexing);
* **rest**: event parsing and validation, the input digests, documents, outcome bookkeeping.

``--updates`` then sends every product again as a price change (the next version, a new price, the
same title, category and photo), the commonest event of a live catalogue, and profiles that pass
too: its events find their vectors in the index and skip the tower.

Redis and Celery are not in it (their share is what separates this single process from the
sustained rate of :mod:`bench.performance.ingestion`), nor is the engine's refresh, which runs on
its own schedule on the same cores. Each repeat writes fresh ids into a fresh index; the first
batch (session set-up) is not timed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Sequence

from bench.performance.common import (
    RunInfo,
    add_common_args,
    catalogue_events,
    finish_args,
    load_inputs,
    prepare_encoder,
    price_update,
    section_header,
    write_outputs,
)
from bench.performance.engine_index import engine_stack
from bench.relevance_stack import recreate_index
from bench.report import markdown_table
from es_mappings import IndexNames

INDEX_PREFIX = "perf-ingest-profile"
STAGES = ("lookup", "image read", "picture check", "featurize", "tower", "bulk", "rest")
TINY_EVENTS = 256


class StageClock:
    """Wall seconds per stage, summed over calls, by wrapping the callables a batch goes through."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, stage: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started
        return wrapper

    @contextmanager
    def patched(self, owner: Any, name: str, stage: str) -> Iterator[None]:
        """``owner.name`` timed as ``stage`` inside the block, restored after it."""
        original = getattr(owner, name)
        setattr(owner, name, self.timed(stage, original))
        try:
            yield
        finally:
            setattr(owner, name, original)


def stage_shares(seconds: dict[str, float], total: float) -> dict[str, float]:
    """Each stage's exclusive seconds: the tower without its featurizing, the rest as what is left."""
    exclusive = {
        "lookup": seconds.get("lookup", 0.0),
        "image read": seconds.get("image read", 0.0),
        "picture check": seconds.get("picture check", 0.0),
        "featurize": seconds.get("featurize", 0.0),
        "tower": seconds.get("encode", 0.0) - seconds.get("featurize", 0.0),
        "bulk": seconds.get("bulk", 0.0),
    }
    exclusive["rest"] = total - sum(exclusive.values())
    return exclusive


def profile_pass(engine: Any, encoder: Any, batches: Sequence[list[dict[str, Any]]], index: str,
                 image_root: Any) -> dict[str, Any]:
    """``batches`` through ``index_events`` one after the other: seconds per stage and events/s."""
    import indexer.pipeline as pipeline

    clock = StageClock()
    with ExitStack() as patches:
        patches.enter_context(clock.patched(pipeline, "stored_vectors", "lookup"))
        patches.enter_context(clock.patched(pipeline, "encoder_input", "image read"))
        patches.enter_context(clock.patched(pipeline, "check_picture", "picture check"))
        patches.enter_context(clock.patched(encoder, "encode_products", "encode"))
        patches.enter_context(clock.patched(engine, "bulk", "bulk"))
        if hasattr(encoder, "featurizer"):  # else featurizing stays inside the tower's share
            patches.enter_context(clock.patched(encoder.featurizer, "products", "featurize"))
        started = time.perf_counter()
        for batch in batches:
            report = pipeline.index_events(batch, engine=engine, encoder=encoder, index=index, image_root=image_root)
            if report.with_status(pipeline.Status.REJECTED, pipeline.Status.RETRY):
                raise RuntimeError(f"batch not fully indexed: {report.counts()}")
        total = time.perf_counter() - started
    events = sum(len(batch) for batch in batches)
    return {"events": events, "seconds": total, "events_per_s": events / total,
            "stages_s": stage_shares(clock.seconds, total)}


def profile_once(engine: Any, encoder: Any, events: list[dict[str, Any]], batch_size: int,
                 image_root: Any, updates: bool) -> dict[str, Any]:
    """One pass of new products into a fresh index, then (``updates``) one of their price changes."""
    import indexer.pipeline as pipeline

    names = IndexNames(INDEX_PREFIX)
    recreate_index(engine, names, encoder.dimension, engine.text_analyzer())
    batches = [events[start:start + batch_size] for start in range(0, len(events), batch_size)]
    pipeline.index_events(batches[0], engine=engine, encoder=encoder, index=names.write_alias, image_root=image_root)
    result = profile_pass(engine, encoder, batches[1:], names.write_alias, image_root)
    if updates:
        engine.refresh(names.write_alias)  # the lookup reads what a refresh made visible
        changed = [[price_update(event) for event in batch] for batch in batches[1:]]
        result["updates"] = profile_pass(engine, encoder, changed, names.write_alias, image_root)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    catalog, _ = load_inputs(args)
    catalog = catalog.head(TINY_EVENTS if args.tiny else args.events)
    encoder = prepare_encoder(args.encoder, threads=1)  # as each worker loads it (ACEBERT_ENCODER_THREADS=1)
    runs = []
    with engine_stack(args.engine) as (engine, _):
        for repeat in range(args.repeats):
            events = catalogue_events(args.catalog, catalog, f"p{repeat}-")
            runs.append(profile_once(engine, encoder, events, args.batch_size, args.catalog, args.updates))
            rates = [f"{runs[-1]['events_per_s']:.0f} events/s"]
            if args.updates:
                rates.append(f"price updates {runs[-1]['updates']['events_per_s']:.0f} events/s")
            print(f"profile {repeat + 1}/{args.repeats}: {', '.join(rates)}", flush=True)
    return {"runs": runs, "model_version": encoder.model_version}


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median events/s, and per stage the median ms per event and share of the wall time."""
    per_event = {stage: statistics.median(r["stages_s"][stage] / r["events"] * 1000 for r in runs) for stage in STAGES}
    share = {stage: statistics.median(r["stages_s"][stage] / r["seconds"] for r in runs) for stage in STAGES}
    return {"events_per_s": statistics.median(r["events_per_s"] for r in runs), "ms_per_event": per_event,
            "share": share}


def ratio_of_medians(runs: Sequence[dict[str, Any]]) -> float:
    """The median over repeats of (price updates/s) / (new products/s), each pair from one repeat."""
    return statistics.median(r["updates"]["events_per_s"] / r["events_per_s"] for r in runs)


def render(payload: dict[str, Any], info: RunInfo) -> str:
    def stage_table(summary: dict[str, Any]) -> list[str]:
        rows = [[stage, f"{summary['ms_per_event'][stage]:.3f}", f"{summary['share'][stage]:.0%}"] for stage in STAGES]
        first = max(STAGES, key=lambda stage: summary["share"][stage])
        return [markdown_table(["stage", "ms per event", "share of wall time"], rows), "",
                f"The largest stage is **{first}** ({summary['share'][first]:.0%})."]

    summary = payload["summary"]
    lines = [
        section_header("Target 3, profile: where a worker's time goes", info),
        f"{payload['engine']}, `indexer.pipeline.index_events` in one process, encoder `{payload['encoder']}` "
        f"({payload['model_version']}) on one thread as each worker runs it, batches of {payload['batch_size']}, "
        f"{payload['runs'][0]['events']} events x {len(payload['runs'])} repeats (medians). One process did "
        f"{summary['events_per_s']:.0f} events/s of new products.\n",
        *stage_table(summary),
    ]
    if "updates" in summary:
        updates = summary["updates"]
        lines += [
            "",
            f"Then the same products again as price changes (the next version, a new price, the same title, category "
            f"and photo): **{updates['events_per_s']:.0f} events/s, {ratio_of_medians(payload['runs']):.1f}x** the "
            "new products' rate (median of per-repeat ratios). Each finds its stored vector and skips the tower.\n",
            *stage_table(updates),
        ]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.ingestion_profile",
                                     description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    parser.add_argument("--events", type=int, default=4000, help="catalogue events per repeat")
    parser.add_argument("--batch-size", type=int, default=64, help="the workers' micro-batch (INGEST_BATCH_SIZE)")
    parser.add_argument("--updates", action="store_true",
                        help="then profile the same products again as price changes (their vectors reused)")
    return finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.ingestion_profile", argv)
    results = run(args)
    payload = {**info.as_dict(), "engine": args.engine, "encoder": args.encoder, "batch_size": args.batch_size,
               **results, "summary": summarize(results["runs"])}
    if args.updates:
        payload["summary"]["updates"] = summarize([r["updates"] for r in results["runs"]])
    write_outputs(args, "ingestion-profile", payload, render(payload, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
