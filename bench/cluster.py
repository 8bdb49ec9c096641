"""Two-node cluster measurements: sharded vs single-shard hybrid, and a node lost under load.

``python -m bench.cluster [--catalog DIR] [--queries TSV --qrels TSV] [--limit-products N] [--tiny]``

Starts a real two-node OpenSearch cluster (:func:`devstack.start_opensearch_cluster`), Redis and
a Celery worker (:func:`devstack.local_stack` with no single-node engine), and measures:

1. **Sharded vs single-shard hybrid.** The catalogue goes once into a 2-shard/1-replica index
   through the production ingestion path (producer -> Redis -> worker -> bulk) and once into a
   1-shard/0-replica index (``indexer.pipeline.index_events`` in batches, same encoder). The test
   queries then run as hybrid (min-max, 0.5/0.5) on the single shard, on 2 shards with the
   default ``query_then_fetch`` and on 2 shards with ``dfs_query_then_fetch``: nDCG@10 of each,
   the mean top-10 overlap of each sharded variant with the single-shard ranking, and latency of
   the three in interleaved rounds with the same (cached) query vectors.
2. **A node lost.** A search loop runs while 300 new products are ingested; node 2 is SIGKILLed
   mid-ingestion, the queue drains, node 2 is restarted, and the time to a green cluster is taken.

Writes ``docs/results/scaling-cluster.json`` (``--tiny``: a temporary directory), which
``python -m bench.scaling`` renders into ``docs/scaling.md``. The pure functions (overlap,
interleaving, outcome counts, percentiles, the finding sentence) are unit-tested in
``tests/unit/test_bench_cluster.py``; the rest starts and stops services and is run by hand.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT
from devstack.engines import cluster_health

DEFAULT_CATALOG = (REPO_ROOT / DEFAULT_DATA_DIR).resolve()
RESULTS_NAME = "scaling-cluster"
TINY_OUTPUT = Path(tempfile.gettempdir()) / "acebert-cluster-tiny"
TINY_PRODUCTS = 500
TINY_QUERIES = 20

K = 10
BM25_WEIGHT = 0.5
METHOD = "min_max"
VARIANTS = ("1 shard", "2 shards", "2 shards + dfs")
"""The three ways the test queries are answered; the first is the reference ranking."""
INDEX_BATCH = 256
WORKER_CONCURRENCY = 2
NODE_LOSS_EVENTS = 300
OUTAGE_MIN_S = 20.0
"""The node stays down at least this long, even if the queue drains sooner."""
SEARCH_PAUSE_S = 0.05
GREEN_TIMEOUT_S = 300.0


# --- pure functions ---------------------------------------------------------------------------
def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int = K) -> float:
    """Share of the top ``k`` two rankings have in common (order ignored); 1.0 when both are empty.

    The denominator is the longer of the two cut lists, so two identical lists shorter than
    ``k`` overlap fully and a list that returned fewer hits does not look closer than it is.
    """
    top_a, top_b = list(a[:k]), list(b[:k])
    longest = max(len(top_a), len(top_b))
    return 1.0 if longest == 0 else len(set(top_a) & set(top_b)) / longest


def mean_overlap(rankings: Mapping[str, Sequence[str]], reference: Mapping[str, Sequence[str]],
                 k: int = K) -> float:
    """Mean :func:`overlap_at_k` over the reference's queries (every one must be in ``rankings``)."""
    if not reference:
        raise ValueError("no queries to compare")
    return statistics.fmean(overlap_at_k(rankings[qid], reference[qid], k) for qid in reference)


def identical_share(rankings: Mapping[str, Sequence[str]], reference: Mapping[str, Sequence[str]],
                    k: int = K) -> float:
    """Share of the reference's queries whose top ``k`` is the same list, in the same order."""
    if not reference:
        raise ValueError("no queries to compare")
    return sum(list(rankings[qid][:k]) == list(reference[qid][:k]) for qid in reference) / len(reference)


def same_scores(a: Sequence[float], b: Sequence[float], rel_tol: float = 1e-5) -> bool:
    """Whether two ranked score lists are the same, score for score (equal length, each within ``rel_tol``).

    Two rankings with the same scores but different products differ only in how ties were broken.
    """
    return len(a) == len(b) and all(abs(x - y) <= rel_tol * max(abs(x), abs(y), 1e-12) for x, y in zip(a, b))


def same_scores_share(scores: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]]) -> float:
    """Share of the reference's queries whose score list :func:`same_scores` as the reference's."""
    if not reference:
        raise ValueError("no queries to compare")
    return sum(same_scores(scores[qid], reference[qid]) for qid in reference) / len(reference)


def interleaved(variants: Sequence[str], queries: int, rounds: int) -> list[tuple[int, int, str]]:
    """``(round, query index, variant)`` in the order to run them.

    Each query is asked of every variant back to back, and the variant that goes first rotates
    with the round and the query, so no variant always runs first (cold) or last (warm), and a
    slow spell on the shared machine hits every variant alike.
    """
    order = []
    for r in range(rounds):
        for q in range(queries):
            shift = (r + q) % len(variants)
            order += [(r, q, v) for v in (*variants[shift:], *variants[:shift])]
    return order


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Sample:
    """One search of the loop that runs while a node is lost."""

    at: float          # time.monotonic() when the search was sent
    outcome: str       # "answered" | "empty" | "failed"
    ms: float
    error: str = ""


def outcome_counts(samples: Iterable[Sample], start: float = float("-inf"),
                   end: float = float("inf")) -> dict[str, int]:
    """How many searches sent in ``[start, end)`` were answered, came back empty, or failed."""
    counts = {"answered": 0, "empty": 0, "failed": 0}
    for sample in samples:
        if start <= sample.at < end:
            counts[sample.outcome] += 1
    return counts


def window_p50_ms(samples: Iterable[Sample], start: float, end: float) -> float | None:
    """Median latency of the answered searches sent in ``[start, end)``; None if there were none."""
    ms = [s.ms for s in samples if start <= s.at < end and s.outcome == "answered"]
    return round(statistics.median(ms), 1) if ms else None


def measure(name: str, value: Any, unit: str = "", note: str = "") -> dict[str, Any]:
    """One row of the results: what was measured, its value, and its unit (if any)."""
    row: dict[str, Any] = {"measure": name, "value": value}
    if unit:
        row["unit"] = unit
    if note:
        row["note"] = note
    return row


def dfs_finding(products: int, ndcg: Mapping[str, float], overlap: Mapping[str, float],
                identical: Mapping[str, float], p50_ms: Mapping[str, float],
                legs: Mapping[str, float] | None = None, knn_ndcg: Mapping[str, float] | None = None) -> str:
    """One paragraph reading the dfs result, written from the numbers so it cannot drift from them.

    ``ndcg``, ``overlap``, ``identical`` and ``p50_ms`` are keyed by :data:`VARIANTS`
    (``overlap`` and ``identical`` by the two sharded ones). ``legs`` (optional) holds each
    single leg's mean top-10 overlap with the same leg on one shard, keyed ``bm25``,
    ``bm25 dfs`` and ``knn`` (2 shards), and may add ``bm25 dfs top-100`` (the top-100 overlap)
    with ``bm25 dfs same scores`` (the share of queries whose top-100 BM25 scores equal the single
    shard's); ``knn_ndcg`` the kNN leg's own nDCG@10 keyed ``1 shard`` and ``2 shards``. With them
    the paragraph says which leg the remaining difference comes from, and whether it is ties.
    """
    single, default, dfs = VARIANTS
    cost_ms = p50_ms[dfs] - p50_ms[default]
    cost = (f"p50 {p50_ms[dfs]:.1f} ms against {p50_ms[default]:.1f} ms without it "
            f"({cost_ms:+.1f} ms, {cost_ms / p50_ms[default]:+.0%})")
    gap = (f"On {products:,} products split over 2 shards, the default `query_then_fetch` hybrid ranking "
           f"shares {overlap[default]:.1%} of its top 10 with the single-shard ranking "
           f"({identical[default]:.0%} of queries have the identical top 10), and its nDCG@10 is "
           f"{ndcg[default]:.4f} against {ndcg[single]:.4f} on one shard ({ndcg[default] - ndcg[single]:+.4f}).")
    delta = ndcg[default] - ndcg[single]
    if abs(delta) < 0.01:
        gap += " Per-shard BM25 statistics move the order much more than the quality."
    else:
        gap += (f" Per-shard BM25 statistics {'cost' if delta < 0 else 'happen to add'} {abs(delta):.4f} "
                "nDCG@10 here.")
    if overlap[dfs] >= 0.999 and abs(ndcg[dfs] - ndcg[single]) < 5e-5:
        verdict = (f" **`dfs=True` closes the gap**: top-10 overlap {overlap[dfs]:.1%} "
                   f"({identical[dfs]:.0%} identical), nDCG@10 {ndcg[dfs]:.4f}, the single shard's, at {cost}.")
    elif overlap[dfs] > overlap[default]:
        verdict = (f" `dfs=True` narrows the gap without closing it: top-10 overlap {overlap[dfs]:.1%} "
                   f"({identical[dfs]:.0%} identical), nDCG@10 {ndcg[dfs]:.4f}, at {cost}.")
    else:
        verdict = (f" `dfs=True` does not bring the ranking closer to the single shard's: top-10 overlap "
                   f"{overlap[dfs]:.1%}, nDCG@10 {ndcg[dfs]:.4f}, at {cost}.")
    return gap + verdict + (_legs_finding(legs, knn_ndcg) if legs else "")


def _legs_finding(legs: Mapping[str, float], knn_ndcg: Mapping[str, float] | None) -> str:
    ties = legs.get("bm25 dfs same scores", 0.0) >= 0.999
    if not (legs["bm25 dfs"] >= 0.999 and (ties or legs["knn"] < 0.999)):
        return (f" Leg by leg, against the same leg on one shard: the BM25 leg's top 10 overlaps {legs['bm25']:.1%} "
                f"without dfs and {legs['bm25 dfs']:.1%} with it; the kNN leg's {legs['knn']:.1%}.")
    text = (f" Leg by leg, dfs does all it can: the BM25 leg's top 10 goes from {legs['bm25']:.1%} to "
            f"{legs['bm25 dfs']:.1%} overlap with one shard")
    text += ", its top-100 scores equal the single shard's for every query." if ties else "."
    rest = []
    if ties:
        rest.append(f"ties at the BM25 leg's top-100 cut (overlap {legs['bm25 dfs top-100']:.1%}: products with "
                    "exactly the same score, ordered by shard and document)")
    if legs["knn"] < 0.999:
        knn = (f"the kNN leg (top-10 overlap {legs['knn']:.1%}), which uses no term statistics: each shard searches "
               "its own approximate HNSW graph for its own top 100")
        if knn_ndcg:
            knn += f" (kNN-only nDCG@10 {knn_ndcg['2 shards']:.4f} on 2 shards, {knn_ndcg['1 shard']:.4f} on 1)"
        rest.append(knn)
    if rest:
        text += " What the blend still sees differently is " + " and ".join(rest) + "."
    return text


# --- running it -------------------------------------------------------------------------------
@dataclass
class Judged:
    """The test queries with judgments among the indexed products."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_judged(queries_path: Path, qrels_path: Path, product_ids: set[str], limit: int | None) -> Judged:
    from acebert.data import load_qrels, load_queries
    from acebert.evaluate import restrict_qrels

    qrels = restrict_qrels(load_qrels(qrels_path), product_ids)
    frame = load_queries(queries_path)
    frame = frame[frame["query_id"].isin(qrels)].head(limit)
    return Judged(dict(zip(frame["query_id"], frame["query"])), {qid: qrels[qid] for qid in frame["query_id"]})


def ndcg_at_10(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]) -> float:
    from acebert.metrics import evaluate_run
    from bench.relevance_eval import to_run

    return evaluate_run(dict(qrels), to_run(rankings))["ndcg@10"]  # type: ignore[arg-type]


@dataclass
class SearchLoop:
    """Searches in a background thread until stopped, recording each outcome."""

    searcher: Any
    texts: list[str]
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="search-loop")
        self._thread.start()

    def _run(self) -> None:
        from query_rewriter.blend import leg_weights
        from query_rewriter.search import SearchRequest

        i = 0
        while not self._stop.is_set():
            text = self.texts[i % len(self.texts)]
            i += 1
            sent = time.monotonic()
            try:
                hits = self.searcher.search(SearchRequest(text, size=K, method=METHOD,
                                                          weights=leg_weights(BM25_WEIGHT))).hits
                outcome, error = ("answered" if hits else "empty"), ""
            except Exception as exc:  # every failure is a finding: counted and reported
                outcome, error = "failed", repr(exc)[:300]
            self.samples.append(Sample(sent, outcome, (time.monotonic() - sent) * 1000, error))
            time.sleep(SEARCH_PAUSE_S)

    def wait_for(self, count: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.samples) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the search loop made {len(self.samples)} searches, not {count}")
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _request(text: str, dfs: bool = False):
    from query_rewriter.blend import leg_weights
    from query_rewriter.search import SearchRequest

    return SearchRequest(text, size=K, method=METHOD, weights=leg_weights(BM25_WEIGHT), dfs=dfs)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="directory with products.csv and images/")
    parser.add_argument("--queries", type=Path, default=None, help="test queries TSV (default: CATALOG/queries_test.tsv)")
    parser.add_argument("--qrels", type=Path, default=None, help="test judgments TSV (default: CATALOG/qrels_test.tsv)")
    parser.add_argument("--limit-products", type=int, default=None, help="index only the first N products")
    parser.add_argument("--limit-queries", type=int, default=None, help="use only the first N judged queries")
    parser.add_argument("--encoder", default="minilm", help="encoder spec (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds (default: %(default)s)")
    parser.add_argument("--events", type=int, default=NODE_LOSS_EVENTS,
                        help="events ingested while a node is lost (default: %(default)s)")
    parser.add_argument("--heap", default="1g", help="JVM heap of each node (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"smoke run: {TINY_PRODUCTS} products, {TINY_QUERIES} queries, one round; "
                             f"writes to {TINY_OUTPUT}")
    parser.add_argument("--results", type=Path, default=None, help="JSON directory (default: docs/results)")
    args = parser.parse_args(argv)
    args.queries = args.queries or args.catalog / "queries_test.tsv"
    args.qrels = args.qrels or args.catalog / "qrels_test.tsv"
    if args.tiny:
        args.limit_products = args.limit_products or TINY_PRODUCTS
        args.limit_queries = args.limit_queries or TINY_QUERIES
        args.rounds = 1
        args.events = min(args.events, 60)
        args.results = args.results or TINY_OUTPUT
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import command_line, run_directory

    args = parse_args(argv)
    command = command_line("bench.cluster", argv)
    started = time.perf_counter()
    with run_directory("acebert-bench-cluster-") as run_dir:
        payload = run(args, run_dir)
    payload = {"command": command, **payload, "wall_s": round(time.perf_counter() - started, 1)}
    path = write_results(args.results, payload)
    _log(f"wrote {path}")
    return 0


def write_results(results: Path | None, payload: dict[str, Any]) -> Path:
    from bench.report import RESULTS, commit, machine, write_json

    if results is None or results.resolve() == RESULTS.resolve():
        return write_json(RESULTS_NAME, payload)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{RESULTS_NAME}.json"
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), **payload}, indent=2, default=str) + "\n")
    return path


def run(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """Start the services, measure both parts, stop everything; returns the payload (no stamp)."""
    from devstack import local_stack, start_opensearch_cluster

    cluster = None
    with local_stack(run_dir / "stack", engines=()) as stack:  # Redis; workers stop with it
        try:
            t = time.perf_counter()
            cluster = start_opensearch_cluster(run_dir / "cluster", nodes=2, heap=args.heap)
            _log(f"two-node cluster up at {cluster.urls} in {time.perf_counter() - t:.1f}s")
            return measure_all(args, stack, cluster)
        finally:
            if cluster is not None:
                cluster.stop()


def measure_all(args: argparse.Namespace, stack: Any, cluster: Any) -> dict[str, Any]:
    from dataclasses import replace

    from acebert.encoder import CachedQueryEncoder
    from indexer.catalog import catalog_events
    from indexer.indices import ensure_index
    from query_rewriter.search import HybridSearcher, SearchRequest
    from settings import Settings
    from system import System

    events = catalog_events(args.catalog, limit=args.limit_products)
    judged = load_judged(args.queries, args.qrels, {e["product_id"] for e in events}, args.limit_queries)
    _log(f"{len(events)} products, {len(judged.queries)} judged test queries")

    sharded_settings = Settings(
        engine="opensearch", engine_url=",".join(cluster.urls), redis_url=stack.redis.url,
        index_prefix="cluster-2shards", queue_prefix="bench-cluster", encoder=args.encoder,
        image_root=args.catalog.resolve(), index_shards=2, index_replicas=1, encoder_threads=1)
    single_settings = replace(sharded_settings, index_prefix="cluster-1shard", index_shards=1, index_replicas=0)
    sharded, single = System(sharded_settings), System(single_settings)
    try:
        encoder = single.encoder  # one model for both indices and every query
        ensure_index(sharded.engine, sharded.names, encoder.dimension, sharded.layout)
        single.ensure_index()

        # --- 2 shards, 1 replica, through the producer and a worker -----------------------------
        t = time.perf_counter()
        worker = stack.start_worker(sharded_settings, "cluster", concurrency=WORKER_CONCURRENCY)
        _log(f"worker ready in {time.perf_counter() - t:.1f}s; enqueueing {len(events)} events")
        t = time.perf_counter()
        queued = sharded.producer.enqueue(events).queued
        sharded.queue.wait_drained(3600, poll_s=1.0, check=worker.check_alive)
        sharded.engine.refresh(sharded.names.read_alias)
        ingest_s = time.perf_counter() - t
        sharded_count = sharded.engine.count(sharded.names.read_alias)
        dead_after_ingest = len(sharded.queue.dead_letters())
        green = wait_green(cluster.urls[0], 180)[0]
        index_2 = sharded.engine.indices_of_alias(sharded.names.read_alias)[0]
        copies = sorted(sharded.engine.shard_copies(index_2))
        _log(f"2-shard index: {sharded_count} of {queued} documents in {ingest_s:.1f}s, cluster {green}, "
             f"copies {copies}, {dead_after_ingest} dead letters")

        # --- 1 shard, 0 replicas, directly ------------------------------------------------------
        from indexer.pipeline import index_events

        t = time.perf_counter()
        indexed_1 = 0
        for i in range(0, len(events), INDEX_BATCH):
            report = index_events(events[i:i + INDEX_BATCH], engine=single.engine, encoder=encoder,
                                  index=single.names.write_alias, image_root=single_settings.image_root)
            indexed_1 += report.counts().get("indexed", 0)
        single.engine.refresh(single.names.read_alias)
        single_count = single.engine.count(single.names.read_alias)
        _log(f"1-shard index: {single_count} documents in {time.perf_counter() - t:.1f}s")

        # --- relevance and agreement ------------------------------------------------------------
        cached = CachedQueryEncoder(encoder, max_entries=None)
        searchers = {
            VARIANTS[0]: (HybridSearcher.over(single.engine, cached, single.names.read_alias), False),
            VARIANTS[1]: (HybridSearcher.over(sharded.engine, cached, sharded.names.read_alias), False),
            VARIANTS[2]: (HybridSearcher.over(sharded.engine, cached, sharded.names.read_alias), True),
        }
        qids = list(judged.queries)
        texts = [judged.queries[q] for q in qids]
        cached.encode_queries(texts)  # warm: every variant then uses the very same vectors
        rankings: dict[str, dict[str, list[str]]] = {}
        for variant, (searcher, dfs) in searchers.items():
            rankings[variant] = {qid: [h.product_id for h in searcher.search(_request(judged.queries[qid], dfs)).hits]
                                 for qid in qids}
        ndcg = {v: round(ndcg_at_10(judged.qrels, rankings[v]), 4) for v in VARIANTS}
        reference = rankings[VARIANTS[0]]
        overlap = {v: round(mean_overlap(rankings[v], reference), 4) for v in VARIANTS[1:]}
        identical = {v: round(identical_share(rankings[v], reference), 4) for v in VARIANTS[1:]}
        _log(f"nDCG@10 {ndcg}; top-10 overlap with 1 shard {overlap}; identical {identical}")

        # --- each leg alone: which one do 2 shards change? --------------------------------------
        leg_runs = {  # name -> (searcher, mode, dfs)
            "bm25 1 shard": (searchers[VARIANTS[0]][0], "bm25", False),
            "bm25": (searchers[VARIANTS[1]][0], "bm25", False),
            "bm25 dfs": (searchers[VARIANTS[1]][0], "bm25", True),
            "knn 1 shard": (searchers[VARIANTS[0]][0], "knn", False),
            "knn": (searchers[VARIANTS[1]][0], "knn", False),
        }
        leg_hits = {
            name: {qid: searcher.search(SearchRequest(judged.queries[qid], mode=mode, size=100, depth=100,
                                                      dfs=dfs)).hits for qid in qids}
            for name, (searcher, mode, dfs) in leg_runs.items()}
        leg_rankings = {name: {qid: [h.product_id for h in hits] for qid, hits in by_query.items()}
                        for name, by_query in leg_hits.items()}
        leg_scores = {name: {qid: [h.leg_scores[name.split()[0]] for h in hits] for qid, hits in by_query.items()}
                      for name, by_query in leg_hits.items()}
        leg_reference = {"bm25": "bm25 1 shard", "bm25 dfs": "bm25 1 shard", "knn": "knn 1 shard"}
        leg_overlap = {name: round(mean_overlap(leg_rankings[name], leg_rankings[ref]), 4)
                       for name, ref in leg_reference.items()}
        leg_overlap_100 = {name: round(mean_overlap(leg_rankings[name], leg_rankings[ref], 100), 4)
                           for name, ref in leg_reference.items()}
        knn_ndcg = {"1 shard": round(ndcg_at_10(judged.qrels, leg_rankings["knn 1 shard"]), 4),
                    "2 shards": round(ndcg_at_10(judged.qrels, leg_rankings["knn"]), 4)}
        leg_same_scores = {name: round(same_scores_share(leg_scores[name], leg_scores[ref]), 4)
                           for name, ref in leg_reference.items()}
        _log(f"leg top-10 overlap with 1 shard {leg_overlap}; top-100 {leg_overlap_100}; same top-100 scores "
             f"{leg_same_scores}; kNN nDCG@10 {knn_ndcg}")

        # --- latency, interleaved ---------------------------------------------------------------
        totals: dict[str, list[float]] = {v: [] for v in VARIANTS}
        engine_ms: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _, q, variant in interleaved(VARIANTS, len(texts), args.rounds):
            searcher, dfs = searchers[variant]
            timings = searcher.search(_request(texts[q], dfs)).timings_ms
            totals[variant].append(timings["total"])
            engine_ms[variant].append(timings["engine"])
        p50 = {v: round(percentile(totals[v], 50), 2) for v in VARIANTS}
        p95 = {v: round(percentile(totals[v], 95), 2) for v in VARIANTS}
        p50_engine = {v: round(percentile(engine_ms[v], 50), 2) for v in VARIANTS}
        _log(f"hybrid p50 ms {p50}; p95 {p95}; engine p50 {p50_engine}")

        # The single-shard index has no replica: drop it so losing node 2 concerns only the sharded one.
        for index in single.engine.indices_of_alias(single.names.read_alias):
            single.engine.delete_index(index)

        loss = node_loss(args, cluster, sharded, worker, searchers[VARIANTS[1]][0], texts)
    finally:
        sharded.close()
        single.close()

    single_v, default_v, dfs_v = VARIANTS
    rows = [
        measure("nDCG@10, hybrid min-max 0.5/0.5, 1 shard / 0 replicas", ndcg[single_v]),
        measure("nDCG@10, 2 shards / 1 replica, default query_then_fetch", ndcg[default_v]),
        measure("nDCG@10, 2 shards / 1 replica, dfs_query_then_fetch", ndcg[dfs_v]),
        measure("mean top-10 overlap with 1 shard, 2 shards default", overlap[default_v]),
        measure("mean top-10 overlap with 1 shard, 2 shards dfs", overlap[dfs_v]),
        measure("share of queries whose top 10 equals the 1-shard top 10, 2 shards default", identical[default_v]),
        measure("share of queries whose top 10 equals the 1-shard top 10, 2 shards dfs", identical[dfs_v]),
        measure("BM25 leg alone, mean top-10 / top-100 overlap with 1 shard, 2 shards default",
                f"{leg_overlap['bm25']} / {leg_overlap_100['bm25']}",
                note=f"same top-100 scores as 1 shard for {leg_same_scores['bm25']:.1%} of queries"),
        measure("BM25 leg alone, mean top-10 / top-100 overlap with 1 shard, 2 shards dfs",
                f"{leg_overlap['bm25 dfs']} / {leg_overlap_100['bm25 dfs']}",
                note=f"same top-100 scores as 1 shard for {leg_same_scores['bm25 dfs']:.1%} of queries"),
        measure("kNN leg alone, mean top-10 / top-100 overlap with 1 shard, 2 shards",
                f"{leg_overlap['knn']} / {leg_overlap_100['knn']}", note="k = 100 per shard"),
        measure("nDCG@10, kNN leg alone, 1 shard", knn_ndcg["1 shard"]),
        measure("nDCG@10, kNN leg alone, 2 shards", knn_ndcg["2 shards"]),
        measure("hybrid latency p50, 1 shard", p50[single_v], "ms"),
        measure("hybrid latency p50, 2 shards default", p50[default_v], "ms"),
        measure("hybrid latency p50, 2 shards dfs", p50[dfs_v], "ms"),
        measure("hybrid latency p95, 2 shards default", p95[default_v], "ms"),
        measure("hybrid latency p95, 2 shards dfs", p95[dfs_v], "ms"),
        measure("engine (_msearch) p50, 2 shards default", p50_engine[default_v], "ms"),
        measure("engine (_msearch) p50, 2 shards dfs", p50_engine[dfs_v], "ms"),
        measure("catalogue ingested into 2 shards / 1 replica through the worker", round(ingest_s, 1), "s",
                f"{sharded_count:,} of {queued:,} documents, {dead_after_ingest} dead letters, "
                f"{WORKER_CONCURRENCY} pool processes"),
        *loss["rows"],
    ]
    return {
        "setup": (f"2 OpenSearch nodes on this one machine (node-1 cluster manager + data, node-2 data; heap "
                  f"{args.heap} each), Redis and one Celery worker; encoder {encoder.model_version}; hybrid "
                  f"{METHOD} {BM25_WEIGHT}/{round(1 - BM25_WEIGHT, 6)}, depth 100 per leg; latency over "
                  f"{args.rounds} interleaved rounds of {len(texts)} queries per variant, query vectors cached"),
        "products": len(events),
        "queries": len(texts),
        "latency_rounds": args.rounds,
        "measurements": rows,
        "finding": dfs_finding(len(events), ndcg, overlap, identical, p50,
                               {**leg_overlap, "bm25 dfs top-100": leg_overlap_100["bm25 dfs"],
                                "bm25 dfs same scores": leg_same_scores["bm25 dfs"]}, knn_ndcg),
        **({"failure_examples": loss["failure_examples"]} if loss["failure_examples"] else {}),
    }


def wait_green(url: str, timeout_s: float) -> tuple[str, float]:
    """Poll cluster health until green; returns the last status and the monotonic time it was seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = cluster_health(url) or "red"
        now = time.monotonic()
        if status == "green" or now > deadline:
            return status, now
        time.sleep(0.25)


def node_loss(args: argparse.Namespace, cluster: Any, sharded: Any, worker: Any, searcher: Any,
              texts: list[str]) -> dict[str, Any]:
    """Kill node 2 while searches run and events are ingested, restart it, time the recovery."""
    engine, alias, queue = sharded.engine, sharded.names.read_alias, sharded.queue
    tag = f"node-loss-{uuid.uuid4().hex[:8]}"
    events = [{"type": "upsert", "product_id": f"{tag}-{i}", "version": 1, "title": f"Failover tee number {i}"}
              for i in range(args.events)]
    half = len(events) // 2
    loop = SearchLoop(searcher, texts)
    loop.start()
    try:
        loop.wait_for(20)
        sharded.producer.enqueue(events[:half])
        cluster.kill(1)
        killed_at = time.monotonic()
        in_queue_at_kill = queue.pending() + queue.in_flight()
        _log(f"node 2 killed with {in_queue_at_kill} events pending or in flight")
        sharded.producer.enqueue(events[half:])
        queue.wait_drained(600, poll_s=0.25, check=worker.check_alive)
        drained_s = time.monotonic() - killed_at
        _log(f"queue drained {drained_s:.1f}s after the kill")
        time.sleep(max(0.0, OUTAGE_MIN_S - (time.monotonic() - killed_at)))
        engine.refresh(alias)
        indexed = engine.count(alias, {"prefix": {"product_id": tag}})
        health_down = cluster_health(cluster.urls[0]) or "red"
        restart_at = time.monotonic()
        cluster.restart(1)
        node_up_s = time.monotonic() - restart_at
        status, green_at = wait_green(cluster.urls[0], GREEN_TIMEOUT_S)
        green_s = green_at - restart_at
        _log(f"node 2 answering {node_up_s:.1f}s after restart, cluster {status} after {green_s:.1f}s")
        time.sleep(2.0)
    finally:
        loop.stop()
    samples = loop.samples
    before = outcome_counts(samples, end=killed_at)
    outage = outcome_counts(samples, killed_at, restart_at)
    recovery = outcome_counts(samples, restart_at, green_at)
    parked = [d for d in queue.dead_letters()
              if isinstance(d.event, dict) and str(d.event.get("product_id", "")).startswith(tag)]
    lost = len(events) - indexed
    rows = [
        measure("searches before the kill: answered / empty / failed",
                f"{before['answered']} / {before['empty']} / {before['failed']}",
                note=f"p50 {window_p50_ms(samples, float('-inf'), killed_at)} ms"),
        measure("searches while node 2 was down: answered / empty / failed",
                f"{outage['answered']} / {outage['empty']} / {outage['failed']}",
                note=f"{restart_at - killed_at:.1f} s down; p50 {window_p50_ms(samples, killed_at, restart_at)} ms; "
                     f"cluster {health_down} while down"),
        measure("searches from restart to green: answered / empty / failed",
                f"{recovery['answered']} / {recovery['empty']} / {recovery['failed']}",
                note=f"p50 {window_p50_ms(samples, restart_at, green_at)} ms"),
        measure("events ingested across the node loss: expected / indexed", f"{len(events)} / {indexed}",
                note=f"{in_queue_at_kill} pending or in flight at the kill"),
        measure("events lost", lost, note=f"{len(parked)} of them parked as dead letters"),
        measure("kill to queue drained", round(drained_s, 1), "s"),
        measure("restart to node 2 answering", round(node_up_s, 1), "s"),
        measure("restart to cluster green", round(green_s, 1), "s", note=f"final status {status}"),
    ]
    failures = sorted({s.error for s in samples if s.outcome == "failed"})[:3]
    return {"rows": rows, "failure_examples": failures}


if __name__ == "__main__":
    sys.exit(main())
