"""``hybrid-search``: the command line over the same library the HTTP service uses.

Settings come from the environment (see ``settings.py``); ``--engine``/``--url`` and the index
layout options (``--shards``, ``--replicas``, ``--refresh-interval``) override them for one call. Each command takes its parts from one :class:`~system.System`, and the
model loads only in commands that encode.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from engines import ENGINE_KINDS
from query_rewriter.blend import METHODS
from query_rewriter.search import MODES
from es_mappings import LIVE_PRODUCTS
from indexer.reembed import SwitchReport
from settings import Settings
from system import System


def _system(args: argparse.Namespace) -> System:
    overrides = {"engine": args.engine, "engine_url": args.url, "index_shards": args.shards,
                 "index_replicas": args.replicas, "index_refresh_interval": args.refresh_interval}
    settings = replace(Settings.from_env(), **{key: value for key, value in overrides.items() if value is not None})
    return System(settings)


def _read_events(path: str) -> Iterator[Any]:
    """Events from a JSON Lines file (or ``-`` for stdin); a bad line is reported with its number."""
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{number}: not valid JSON: {exc.msg}") from None


def cmd_init(args: argparse.Namespace) -> None:
    system = _system(args)
    index = system.ensure_index()
    layout = system.layout
    print(f"{system.engine.kind}: {system.names.read_alias} / {system.names.write_alias} -> {index}; new versions get "
          f"{layout.shards} shard(s), {layout.replicas} replica(s), refresh {layout.refresh_interval} "
          "(an existing index keeps its own)")


def cmd_enqueue(args: argparse.Namespace) -> None:
    result = _system(args).producer.enqueue(list(_read_events(args.file)))
    print(f"queued {result.queued} events")
    for letter_id, error in result.parked:
        print(f"parked {letter_id}: {error}", file=sys.stderr)


def cmd_load_catalog(args: argparse.Namespace) -> None:
    from acebert.data import DataError
    from indexer.catalog import catalog_events

    system = _system(args)
    try:  # image paths relative to PRODUCT_IMAGE_ROOT, which must hold the catalogue's photos
        events = catalog_events(args.catalog, system.settings.image_root, version=args.version, limit=args.limit)
    except DataError as error:
        raise SystemExit(f"hybrid-search load-catalog: {error}") from None
    if args.direct:
        counts = _index_directly(system, events, args.batch_size)
        print(json.dumps(counts))
        if counts.get("parked"):
            print(f"{counts['parked']} events parked: hybrid-search dead-letters list", file=sys.stderr)
        return
    result = system.producer.enqueue(events)
    print(f"queued {result.queued} events from {args.catalog}; parked {len(result.parked)}")


DIRECT_RETRIES = 4


def _index_directly(system: System, events: list[Any], batch_size: int) -> dict[str, int]:
    """Bulk-index in this process. Items the engine answered 429/5xx are retried with back-off;
    what still fails, and what can never succeed, is parked in the dead-letter list (replayable
    through the workers), so a direct load loses nothing either."""
    from tqdm import tqdm

    from indexer.pipeline import Status, index_events

    system.ensure_index()
    counts: dict[str, int] = {}
    for start in tqdm(range(0, len(events), batch_size), desc="indexing", unit="batch"):
        batch = events[start : start + batch_size]
        for attempt in range(DIRECT_RETRIES + 1):
            report = index_events(batch, engine=system.engine, encoder=system.models.for_writes().encoder,
                                  index=system.names.write_alias, image_root=system.settings.image_root)
            for outcome in report.with_status(Status.INDEXED, Status.DELETED, Status.STALE):
                counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
            rejected = report.with_status(Status.REJECTED)
            system.queue.park([(o.raw, o.error or "rejected") for o in rejected], stage="index")
            counts["parked"] = counts.get("parked", 0) + len(rejected)
            batch = [o.raw for o in report.with_status(Status.RETRY)]
            if not batch:
                break
            if attempt < DIRECT_RETRIES:
                time.sleep(2.0 ** attempt)
        else:
            system.queue.park([(raw, "the engine kept answering 429/5xx") for raw in batch], stage="engine",
                              attempts=DIRECT_RETRIES + 1)
            counts["parked"] = counts.get("parked", 0) + len(batch)
    return counts


def cmd_wait(args: argparse.Namespace) -> None:
    system = _system(args)
    try:
        system.queue.wait_drained(args.timeout)
    except TimeoutError as exc:
        raise SystemExit(str(exc)) from None
    system.engine.refresh(system.names.read_alias)
    print(f"queue drained; {system.engine.count(system.names.read_alias, LIVE_PRODUCTS)} products searchable")


def cmd_search(args: argparse.Namespace) -> None:
    from query_rewriter.blend import leg_weights
    from query_rewriter.requests import Filters
    from query_rewriter.search import SearchRequest
    from query_rewriter.thresholds import Thresholds

    request = SearchRequest(
        query=args.query, mode=args.mode, method=args.method,
        weights=None if args.bm25_weight is None else leg_weights(args.bm25_weight),
        filters=Filters(args.category, args.brand, args.price_min, args.price_max),
        page=args.page, size=args.size, depth=args.depth,
        thresholds=Thresholds(args.min_bm25, args.min_knn, args.min_score), known_item=args.known_item,
        brand_first=args.brand_first,
    )
    response = _system(args).searcher.search(request)
    if args.json:
        print(json.dumps([h.__dict__ for h in response.hits], indent=2, default=str))
        return
    cut = ", ".join(f"{n} removed by the {leg} minimum" for leg, n in response.removed.items() if n)
    total = f"{response.total}{' or more' if response.total_is_lower_bound else ''}"
    print(f"{args.mode} ({args.method}) for {response.query!r}: {total} products"
          f"{f' ({cut})' if cut else ''}, {response.timings_ms['total']:.1f} ms")
    for rank, hit in enumerate(response.hits, start=(args.page - 1) * args.size + 1):
        legs = " ".join(f"{k}={v:.3f}" for k, v in sorted(hit.leg_scores.items()))
        print(f"{rank:3d}. {hit.score:.4f}  {hit.source.get('title', '')}  [{legs}]")
    for name, values in response.facets.items():
        if values:
            print(f"  {name}: " + ", ".join(f"{v.value} ({v.count})" for v in values[:8]))


def cmd_dead_letters(args: argparse.Namespace) -> None:
    system = _system(args)
    queue = system.queue
    if args.action == "list":
        for letter in queue.dead_letters():
            print(f"{letter.id}  {letter.stage:8s}  {letter.error}")
            if args.verbose:
                print(f"    {json.dumps(letter.event)}")
        return
    if args.action == "discard":
        for letter_id in args.ids:
            queue.discard(letter_id)
        print(f"discarded {len(args.ids)}")
        return
    ids = [d.id for d in queue.dead_letters()] if args.all else args.ids
    corrected = json.loads(Path(args.event_file).read_text()) if args.event_file else None
    print(f"replayed {system.producer.replay(ids, corrected)}")


def cmd_purge_deletes(args: argparse.Namespace) -> None:
    from indexer.indices import purge_tombstones

    system = _system(args)
    removed = purge_tombstones(system.engine, system.names, args.older_than)
    print(f"removed {removed} delete tombstones older than {args.older_than}")


def cmd_reembed(args: argparse.Namespace) -> None:
    from acebert.loading import absolute_spec
    from indexer.reembed import reembed

    system = _system(args)
    spec = absolute_spec(args.encoder or system.settings.encoder)
    report = reembed(system.engine, system.names, system.models, spec, image_root=system.settings.image_root,
                     layout=system.layout)
    _print_switch(system, report)


def cmd_rollout(args: argparse.Namespace) -> None:
    from acebert.data import load_catalog, load_qrels, load_queries
    from acebert.loading import absolute_spec
    from indexer.reembed import reembed
    from indexer.rollout import shadow_evaluate

    system = _system(args)
    spec = absolute_spec(args.model)
    catalog = load_catalog(args.catalog)
    report = shadow_evaluate(system.models.for_reads().encoder, system.models.encoder(spec), catalog,
                             load_queries(args.queries), load_qrels(args.qrels))
    print(report.summary())
    if report.worse and not args.force:
        raise SystemExit(f"refused: the candidate scores {-report.difference:.4f} nDCG@10 below the served model. "
                         "Nothing changed; run again with --force to roll it out anyway.")
    _print_switch(system, reembed(system.engine, system.names, system.models, spec,
                                  image_root=system.settings.image_root, layout=system.layout))


def cmd_rollback(args: argparse.Namespace) -> None:
    from indexer.reembed import rollback

    system = _system(args)
    _print_switch(system, rollback(system.engine, system.names, system.models, image_root=system.settings.image_root))


def _print_switch(system: System, report: SwitchReport) -> None:
    print(f"{system.names.read_alias} and {system.names.write_alias} now use {report.target} "
          f"(model {system.models.model_version_of(report.target)}); previous: {report.source}")
    print(f"  {report.backfilled} documents written from {report.source}, {report.skipped} already there, "
          f"{report.repaired} live writes re-encoded")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.http import create_app

    uvicorn.run(create_app(_system(args)), host=args.host, port=args.port, log_level="info")


def cmd_worker(args: argparse.Namespace) -> None:
    argv = ["celery", "-A", "workers.main", "worker", "--loglevel", "INFO", "-c", str(args.concurrency)]
    os.execvp(argv[0], argv)


def cmd_train(args: argparse.Namespace) -> None:
    from acebert.config import ConfigError
    from acebert.data import DataError
    from acebert.train_user_data import (DEFAULT_OUTPUT, HOLDOUT_FRACTION, STRONG_CLICKS, judgments_from_clicks,
                                         load_judgments, train_on_user_data, user_run_config)

    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "max_train_pairs": args.max_train_pairs,
             "device": args.device, "threads": args.threads}
    overrides = [*args.override, *(f"train.{key}={json.dumps(value)}" for key, value in flags.items() if value is not None)]
    try:
        run = user_run_config(args.config, overrides, output=args.output or DEFAULT_OUTPUT, catalog=args.catalog)
        if args.clicks:
            judgments = judgments_from_clicks(args.clicks, args.strong_clicks or STRONG_CLICKS)
        elif args.queries and args.qrels:
            judgments = load_judgments(args.queries, args.qrels)
        else:
            raise SystemExit("give judgments: --queries queries.tsv --qrels qrels.tsv, or --clicks clicks.csv")
        baseline = args.baseline or Settings.from_env().encoder
        report = train_on_user_data(run, args.catalog, judgments, baseline, args.holdout or HOLDOUT_FRACTION,
                                    overwrite=args.overwrite)
    except (ConfigError, DataError, FileExistsError) as error:
        raise SystemExit(f"hybrid-search train: {error}") from None
    print(f"checkpoint {report.checkpoint} (int8 ONNX export in {report.onnx_dir})")
    print(report.comparison.summary())
    print(f"report: {report.checkpoint / 'evaluation.md'} (and evaluation.json)")
    print(f"next: {report.rollout_command()}")


def cmd_demo(args: argparse.Namespace) -> None:
    from service.demo import run

    run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid-search", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINE_KINDS, help="overrides SEARCH_ENGINE")
    parser.add_argument("--url", help="engine URL, or several comma-separated; overrides SEARCH_URL")
    parser.add_argument("--shards", type=int, help="shards of a new index version; overrides INDEX_SHARDS")
    parser.add_argument("--replicas", type=int, help="replicas of a new index version; overrides INDEX_REPLICAS")
    parser.add_argument("--refresh-interval", help="e.g. 1s or 30s; overrides INDEX_REFRESH_INTERVAL")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create index version 1 and its aliases if absent").set_defaults(func=cmd_init)

    p = sub.add_parser("enqueue", help="queue product events from a JSON Lines file")
    p.add_argument("file", help="events, one JSON object a line; - for stdin")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("load-catalog", help="queue (or index directly) a products.csv catalogue")
    p.add_argument("catalog", help="directory holding products.csv (product_id, title[, category, brand, image]) "
                                   "and its images; its photos must be under PRODUCT_IMAGE_ROOT, and events name "
                                   "them relative to it")
    p.add_argument("--version", type=int, default=1, help="event version of every product")
    p.add_argument("--limit", type=int)
    p.add_argument("--direct", action="store_true", help="bulk-index in this process, bypassing the workers")
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(func=cmd_load_catalog)

    p = sub.add_parser("wait", help="wait until the queue is drained and the index refreshed")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("search", help="run one query")
    p.add_argument("query")
    p.add_argument("--mode", default="hybrid", choices=MODES)
    p.add_argument("--method", default="min_max", choices=METHODS)
    p.add_argument("--bm25-weight", type=float, default=None,
                   help="kNN gets 1 - this (default: the weights stored with the served model, else 0.5)")
    p.add_argument("--category")
    p.add_argument("--brand")
    p.add_argument("--price-min", type=float)
    p.add_argument("--price-max", type=float)
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--size", type=int, default=10)
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--min-bm25", type=float, help="drop candidates whose raw BM25 score is lower")
    p.add_argument("--min-knn", type=float, help="drop candidates whose kNN similarity (0-1) is lower")
    p.add_argument("--min-score", type=float, help="drop hits whose fused score is lower")
    p.add_argument("--no-known-item", dest="known_item", action="store_false",
                   help="hybrid: let the blend rank a product BM25 singles out by every query word (default: first)")
    p.add_argument("--no-brand-first", dest="brand_first", action="store_false",
                   help="hybrid: let the blend rank other brands among those a query names (default: the named "
                        "brand's products first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("dead-letters", help="list, replay or discard parked events")
    p.add_argument("action", choices=["list", "replay", "discard"])
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="replay every dead letter")
    p.add_argument("--event-file", help="replay one dead letter with this corrected event (JSON)")
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("purge-deletes", help="remove delete tombstones older than a retention window")
    p.add_argument("--older-than", default="30d",
                   help="engine date math (30d, 12h); longer than any event can arrive late (default 30d)")
    p.set_defaults(func=cmd_purge_deletes)

    reembed_cmd = sub.add_parser(
        "reembed", help="re-encode every product into a new index version while events keep arriving, "
                        "then move searches to it; resumes an interrupted run")
    reembed_cmd.add_argument("--encoder", help="the new model's encoder spec (default: ACEBERT_ENCODER)")
    reembed_cmd.set_defaults(func=cmd_reembed)
    rollout = sub.add_parser(
        "rollout", help="shadow-evaluate a new model against the served one on your judgments (nDCG@10 with a "
                        "95%% CI), then re-embed into a new index version with it and move searches there")
    rollout.add_argument("model", help="the new model's encoder spec: a checkpoint directory or onnx-int8:DIR")
    rollout.add_argument("--catalog", required=True, help="directory with products.csv (and its images)")
    rollout.add_argument("--queries", required=True, help="judged queries TSV: query_id, query")
    rollout.add_argument("--qrels", required=True, help="judgments TSV: query_id, product_id, grade (0-2)")
    rollout.add_argument("--force", action="store_true", help="roll out even if the candidate scores lower")
    rollout.set_defaults(func=cmd_rollout)
    sub.add_parser("rollback", help="move writes and searches back to the previous index version, bringing it "
                                    "up to date first; abandons an interrupted reembed").set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "train", help="train ACE-BERT on your catalogue and judgments (or click log), export it to int8 ONNX and "
                      "compare it with the served model on held-out queries")
    p.add_argument("--catalog", required=True, help="directory with products.csv (product_id, title[, category, image])")
    p.add_argument("--queries", help="judged queries TSV: query_id, query")
    p.add_argument("--qrels", help="judgments TSV: query_id, product_id, grade (0-2)")
    p.add_argument("--clicks", help="instead of --queries/--qrels: click log CSV with query, product_id, clicks "
                                    "[, purchases]")
    p.add_argument("--strong-clicks", type=int,
                   help="clicks that make a full match (grade 2) without a purchase; fewer: grade 1 (default 3)")
    p.add_argument("--output", help="checkpoint directory to create (default: my-acebert under "
                                    "~/.cache/acebert-search/checkpoints)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --output already holds (an index that model filled is then refused until "
                        "it is re-embedded)")
    p.add_argument("--baseline", help="encoder spec of the served model to compare with (default: ACEBERT_ENCODER)")
    p.add_argument("--holdout", type=float, help="share of queries held out for the comparison (default 0.2)")
    p.add_argument("--config", help="TOML or YAML run config ([model], [train]) over the defaults")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-train-pairs", type=int, help="(query, product) pairs per epoch, at most")
    p.add_argument("--device", help="auto (a GPU when there is one), cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads for training")
    p.add_argument("--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="any other setting, e.g. train.lr=1e-4 (repeatable)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("serve", help="run the HTTP search service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run a Celery worker (same as celery -A workers.main worker)")
    p.add_argument("--concurrency", type=int, default=1)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("demo", help="the whole path end to end on local engines and the sample catalogue, with an "
                                    "ACE-BERT trained on the spot next to the untrained model and BM25")
    p.add_argument("--catalog", help="catalogue directory (default: the shipped sample; env DEMO_CATALOG)")
    p.add_argument("--engine-kind", default="opensearch", choices=ENGINE_KINDS)
    p.add_argument("--queries", help="train-split queries TSV to train on (default: CATALOG/queries.tsv)")
    p.add_argument("--qrels", help="their judgments TSV (default: CATALOG/qrels.tsv)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
