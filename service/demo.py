"""The main job end to end on an embedded default, with a model trained on the spot.

Trains a small ACE-BERT on the sample's shipped train-split judgments (minus a held-out part),
with the function ``hybrid-search train`` runs, while local OpenSearch (or Elasticsearch) and
Redis start and a real Celery worker ingests the sample catalogue as product events with the
untrained model. Then it moves the index to the trained model with ``reembed`` (no downtime; the
worker follows) and prints, for a few generic shopper queries, BM25 next to the hybrid with the
untrained model (the previous index version) and next to the hybrid with the trained one, and
the nDCG@10 of each over the held-out queries, measured through the engine. Everything it
started is stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

from devstack import local_stack
from es_mappings import LIVE_PRODUCTS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
# Generic shopper queries, fixed before any model was trained; they are not judged queries.
QUERIES = ["black watch for men", "women's blue jeans", "running shoes", "red handbag", "sports t-shirt"]
TOP = 5
WIDTH = 38


def _cache() -> Path:
    return Path(os.environ.get("ACEBERT_SEARCH_CACHE", Path.home() / ".cache" / "acebert-search"))


class _Background(threading.Thread):
    """Runs ``work`` in a thread and hands back its result (or raises its error) on :meth:`result`."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(name="demo-training", daemon=True)
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as error:  # re-raised in the caller's thread by result()
            self._error = error

    def result(self) -> Any:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def _print_columns(query: str, columns: list[tuple[str, Any]]) -> None:
    """One row per rank, one column per system; ``[b+k]`` marks which legs found a hybrid hit."""
    print(f"\n=== {query!r}")
    print("    " + " | ".join(f"{name[:WIDTH]:<{WIDTH}}" for name, _ in columns))
    for rank in range(TOP):
        cells = []
        for _, response in columns:
            hit = response.hits[rank] if rank < len(response.hits) else None
            legs = "+".join(leg[0] for leg in sorted(hit.ranks)) if hit else ""
            text = f"{hit.source.get('title', '')[: WIDTH - 6]} [{legs}]" if hit else ""
            cells.append(f"{text:<{WIDTH}}")
        print(f"{rank + 1:2d}. " + " | ".join(cells))


def _heldout_ndcg(searches: dict[str, Callable[[str], Any]], queries: Any, qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per system, nDCG@10 of each held-out query, ranking exactly as the engine returned it."""
    from acebert.metrics import per_query

    texts = dict(zip(queries["query_id"], queries["query"]))
    values = {}
    for name, search in searches.items():
        run = {qid: {hit.product_id: float(10 - rank) for rank, hit in enumerate(search(text).hits)}
               for qid, text in texts.items()}
        values[name] = per_query({qid: qrels[qid] for qid in texts}, run)
    return values


def run(args: argparse.Namespace) -> None:
    from acebert.blend_choice import BLEND_FILE
    from acebert.data import DataError
    from acebert.loading import absolute_spec
    from acebert.metrics import bootstrap_ci
    from acebert.train_user_data import load_judgments, train_on_user_data, user_run_config
    from indexer.catalog import catalog_events
    from indexer.reembed import reembed
    from query_rewriter.search import HybridSearcher, SearchRequest
    from system import System

    started = time.perf_counter()
    catalog = Path(args.catalog or os.environ.get("DEMO_CATALOG") or SAMPLE)
    queries_file, qrels_file = Path(args.queries or catalog / "queries.tsv"), Path(args.qrels or catalog / "qrels.tsv")
    try:
        judgments = load_judgments(queries_file, qrels_file)
    except DataError as error:
        raise SystemExit(f"the demo trains on judgments of the catalogue: {error}. Pass --queries and --qrels "
                         "(train-split judgments only)") from None
    baseline = absolute_spec(os.environ.get("ACEBERT_ENCODER", "minilm"))
    run_dir = _cache() / "demo-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    training = user_run_config(output=run_dir / "acebert", catalog=catalog)
    print(f"training ACE-BERT in the background, as `hybrid-search train --catalog {catalog} --queries "
          f"{queries_file} --qrels {qrels_file} --output {run_dir / 'acebert'}` would "
          f"({training.train.epochs} epochs, batch {training.train.batch_size})")
    trainer = _Background(lambda: train_on_user_data(training, catalog, judgments, baseline, progress=False))
    trainer.start()

    with local_stack(run_dir / "stack", engines=(args.engine_kind,)) as stack:
        settings = stack.settings(index_prefix="demo", image_root=catalog, queue_prefix="demo", encoder=baseline)
        worker = stack.start_worker(settings, "demo")
        print(f"{args.engine_kind}, Redis and a worker up after {time.perf_counter() - started:.0f}s "
              f"(worker log: {worker.log})")
        system = System(settings)
        system.ensure_index()
        events = catalog_events(catalog)
        t = time.perf_counter()
        result = system.producer.enqueue(events)
        system.queue.wait_drained(timeout_s=1800, check=worker.check_alive)
        system.engine.refresh(system.names.read_alias)
        count = system.engine.count(system.names.read_alias, LIVE_PRODUCTS)
        print(f"{count} products ({len(result.parked)} parked) searchable with {baseline} after "
              f"{time.perf_counter() - t:.1f}s of ingestion through the worker")
        for letter in system.queue.dead_letters():
            print(f"dead letter {letter.id}: {letter.error}")

        report = trainer.result()
        print(f"trained in {report.seconds['train']:.0f}s, exported to int8 ONNX in {report.seconds['export']:.0f}s; "
              f"exact-search check on the held-out queries: {report.comparison.summary()}")
        blend = report.blend
        print(f"the trained model's hybrid weights, chosen on the same held-out queries: BM25 {blend.bm25_weight} / "
              f"kNN {blend.weights['knn']} (written to {report.checkpoint / BLEND_FILE})")
        untrained_index = system.models.for_reads().index
        t = time.perf_counter()
        switch = reembed(system.engine, system.names, system.models, absolute_spec(report.candidate_spec),
                         image_root=catalog, layout=system.layout)
        print(f"re-embedded {switch.backfilled} products into {switch.target} with the trained model in "
              f"{time.perf_counter() - t:.1f}s (the worker follows; {untrained_index} keeps the untrained vectors)")

        untrained = HybridSearcher.over(system.engine, system.models.encoder(baseline), untrained_index)
        searches = {
            "BM25 only": lambda q: system.searcher.search(SearchRequest(q, size=10, mode="bm25")),
            "hybrid, untrained model": lambda q: untrained.search(SearchRequest(q, size=10)),
            "hybrid, trained ACE-BERT": lambda q: system.searcher.search(SearchRequest(q, size=10)),
        }
        print(f"\ncolumns: BM25 only ({switch.target}) | hybrid with the untrained "
              f"{system.models.model_version_of(untrained_index)} ({untrained_index}) | hybrid with the trained "
              f"{system.models.model_version_of(switch.target)} ({switch.target})")
        print(f"hybrid = BM25 + kNN, min-max normalised: 0.5/0.5 for the untrained model, {blend.bm25_weight}/"
              f"{blend.weights['knn']} for the trained one; [b+k]: found by the BM25 and/or kNN leg")
        for query in QUERIES:
            _print_columns(query, [(name, search(query)) for name, search in searches.items()])

        heldout = load_judgments(report.heldout_queries, report.heldout_qrels)
        fixed = {"hybrid, trained, 0.5/0.5": lambda q: system.searcher.search(SearchRequest(q, size=10, weights={
            "bm25": 0.5, "knn": 0.5}))}
        values = _heldout_ndcg({**searches, **fixed}, heldout.queries, heldout.qrels)
        print(f"\nnDCG@10 over the {len(heldout.queries)} held-out sample queries (not trained on), "
              f"searched through {args.engine_kind}:")
        for name, per_query_values in values.items():
            print(f"  {name:<{WIDTH}} {sum(per_query_values.values()) / len(per_query_values):.4f}")
        before, after = (list(values[name].values()) for name in list(searches)[1:])
        low, high = bootstrap_ci([b - a for a, b in zip(before, after)])
        print(f"  trained - untrained: {(sum(after) - sum(before)) / len(after):+.4f} "
              f"(paired 95% bootstrap interval {low:+.4f} to {high:+.4f}); the trained hybrid's weights were "
              "chosen on these queries (one of 9), so its figure is optimistic by that choice")
        system.close()
    print(f"\ndemo finished in {time.perf_counter() - started:.0f}s")
