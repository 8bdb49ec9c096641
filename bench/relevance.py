"""Relevance benchmark: BM25 vs dense vs hybrid, through the real ingestion path and the real engines.

    python -m bench.relevance [--catalog DIR] [--queries TSV --qrels TSV]
                              [--dev-queries TSV --dev-qrels TSV]
                              [--engines opensearch,elasticsearch]
                              [--models minilm,acebert-title:CKPT,acebert:CKPT]
                              [--limit-products N] [--limit-queries N] [--reindex] [--out docs/relevance.md]

It starts Redis and each engine, fills one index per model through Celery workers (plus a BM25
index with the engines' default analyzer), sends every dev and test query through the query
module, chooses blend weights on dev, scores test with ranx, and writes the Markdown report and
its JSON (``docs/results/<name>.json`` for a report under ``docs/``, else next to the report).
``attributes.csv`` is read for the colour-slice analysis only; it never reaches an index or model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from acebert.data import load_catalog, load_qrels, load_queries
from acebert.encoder import CachedQueryEncoder, Encoder
from acebert.evaluate import restrict_qrels
from acebert.loading import load_encoder
from acebert.metrics import Qrels, evaluate_run, per_query
from acebert.slices import colour_slice, load_colours
from bench import relevance_markdown
from bench.relevance_eval import (
    Scores,
    bootstrap_ci,
    paired_p_value,
    score,
    to_run,
    wins_and_losses,
)
from bench.relevance_runs import (
    DEPTH,
    RRF_BM25_WEIGHT,
    WEIGHT_GRID,
    Queries,
    System,
    ask_all,
    BreadthRun,
    bm25_system,
    breadth_sweep,
    model_systems,
)
from bench.relevance_stack import IndexSpec, Ingestion, ingest
from bench.report import RESULTS, ROOT, command_line, commit, machine, write_json
from devstack import local_stack
from devstack.install import cache_root
from engines import ENGINE_KINDS, SearchEngine, connect
from indexer.catalog import catalog_events
from query_rewriter.knn_breadth import candidates_for
from query_rewriter.search import HybridSearcher

DATA = (ROOT / "../shared/data/fashion").resolve()
DEFAULT_CHECKPOINT = cache_root() / "checkpoints" / "acebert-default"
MODEL_LABELS = {
    "minilm": "MiniLM-L6 (untrained)",
    "acebert-title": "ACE-BERT (title only)",
    "acebert": "ACE-BERT (title + image)",
}
STANDARD = IndexSpec("bm25-standard", "minilm", standard_analyzer=True)
FAMILY_ORDER = ("BM25", "Dense", "Hybrid", "Hybrid variant", "Server hybrid")
BASELINE = "bm25/project"


def parse_model(text: str) -> IndexSpec:
    """``minilm``, ``acebert:CKPT`` (title + image) or ``acebert-title:CKPT`` (same weights, no image)."""
    kind, _, path = text.partition(":")
    if kind == "minilm" and not path:
        return IndexSpec("minilm", "minilm")
    if kind in ("acebert", "acebert-title") and path:
        checkpoint = Path(path).expanduser().resolve()
        if not (checkpoint / "config.json").is_file():
            raise ValueError(f"{checkpoint} is not an ACE-BERT checkpoint directory")
        return IndexSpec(kind, str(checkpoint), with_images=kind == "acebert")
    raise ValueError(f"model {text!r}: expected minilm, acebert:CKPT or acebert-title:CKPT")


def repeated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted: an index or result row named twice would be shared."""
    return sorted({name for name in names if names.count(name) > 1})


def parse_models(text: str) -> list[IndexSpec]:
    """A comma-separated list of :func:`parse_model` items, each kind at most once.

    Indices and result rows are named by kind, so a second ``acebert:CKPT`` would silently
    share the first one's index and rows: two checkpoints are compared in two runs.
    """
    specs = [parse_model(item.strip()) for item in text.split(",") if item.strip()]
    twice = repeated([spec.name for spec in specs])
    if twice:
        raise ValueError(f"{', '.join(twice)} given twice: name each kind once, and compare two checkpoints of "
                         "one kind in two runs, each with its own --out")
    return specs


def default_models() -> str:
    if (DEFAULT_CHECKPOINT / "config.json").is_file():
        return f"minilm,acebert-title:{DEFAULT_CHECKPOINT},acebert:{DEFAULT_CHECKPOINT}"
    print(f"note: no ACE-BERT checkpoint at {DEFAULT_CHECKPOINT}; benchmarking MiniLM only", file=sys.stderr)
    return "minilm"


def add_candidates_argument(parser: argparse.ArgumentParser) -> None:
    """``--candidates``, shared with the colour probe: model comparisons want the build noise out."""
    parser.add_argument("--candidates", type=int, default=None,
                        help="kNN leg's HNSW candidates (ef_search), e.g. 2000 for near-exact search on ~13k products "
                             "when comparing models; default: what the searcher uses for a catalogue of this size "
                             "(query_rewriter.knn_breadth)")


def breadth(fixed: int | None, products: int) -> dict[str, Any]:
    """The kNN breadth a run asks with, and whether it is the searcher's own for ``products``, for its report."""
    return {"candidates": fixed, "served": False} if fixed else {"candidates": candidates_for(products), "served": True}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.relevance", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=DATA, help="directory with products.csv (and images/)")
    parser.add_argument("--queries", type=Path, default=DATA / "queries_test.tsv", help="queries to report on")
    parser.add_argument("--qrels", type=Path, default=DATA / "qrels_test.tsv", help="their judgments")
    parser.add_argument("--dev-queries", type=Path, default=DATA / "queries_dev.tsv", help="queries to tune on")
    parser.add_argument("--dev-qrels", type=Path, default=DATA / "qrels_dev.tsv")
    parser.add_argument("--attributes", type=Path, default=None,
                        help="attributes.csv for the colour slice, analysis only (default: <catalog>/attributes.csv)")
    parser.add_argument("--engines", default="opensearch,elasticsearch", help="comma-separated engines")
    parser.add_argument("--models", default=None, help="comma-separated: minilm, acebert-title:CKPT, acebert:CKPT "
                        f"(default: all three with {DEFAULT_CHECKPOINT} when it exists)")
    add_candidates_argument(parser)
    parser.add_argument("--limit-products", type=int, default=None, help="first N catalogue rows (smoke runs)")
    parser.add_argument("--limit-queries", type=int, default=None, help="first N dev and N test queries")
    parser.add_argument("--reindex", action="store_true", help="rebuild indices even when they are current")
    parser.add_argument("--run-dir", type=Path, default=cache_root() / "bench-relevance",
                        help="engine data and worker logs (kept between runs so indices can be reused)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "relevance.md", help="Markdown report")
    args = parser.parse_args(argv)
    args.engines = [kind.strip() for kind in args.engines.split(",") if kind.strip()]
    unknown = sorted(set(args.engines) - set(ENGINE_KINDS))
    if unknown or not args.engines:
        parser.error(f"--engines: unknown {unknown}; choose from {list(ENGINE_KINDS)}")
    try:
        args.models = parse_models(args.models or default_models())
    except ValueError as error:
        parser.error(f"--models: {error}")
    return args


@dataclass(frozen=True)
class Split:
    """A query file and its judgments, limited to the products in the catalogue."""

    queries: dict[str, str]
    kinds: dict[str, str]
    qrels: Qrels


def load_split(queries_path: Path, qrels_path: Path, product_ids: set[str], limit: int | None) -> Split:
    """Judgments restricted to catalogued products; queries left without a grade-2 product dropped."""
    qrels = restrict_qrels(load_qrels(qrels_path), product_ids)
    frame = load_queries(queries_path)
    frame = frame[frame["query_id"].isin(qrels)].head(limit)
    kinds = dict(zip(frame["query_id"], frame["kind"])) if "kind" in frame else {}
    return Split(dict(zip(frame["query_id"], frame["query"])), kinds,
                 {qid: qrels[qid] for qid in frame["query_id"]})


def colour_slice_ids(catalog_dir: Path, queries_path: Path, split: Split, attributes: Path) -> set[str]:
    """Test queries whose relevant products mostly lack the colour word in their titles.

    Analysis only (see :mod:`acebert.slices`): ``attributes.csv`` decides which queries are
    reported separately, never what is indexed or how anything is ranked. Empty without it.
    """
    frame = load_queries(queries_path)
    if not attributes.is_file() or "kind" not in frame:
        return set()
    catalog = load_catalog(catalog_dir)
    titles = dict(zip(catalog["product_id"], catalog["title"]))
    return colour_slice(frame[frame["query_id"].isin(split.qrels)], split.qrels, titles, load_colours(attributes))


def served_bm25_weight(spec: str) -> float:
    """The BM25 weight a deployment of model ``spec`` blends with: its stored one (``blend.json``), else the
    searcher's default. The probes report this hybrid, the one a shop serving that model gets."""
    from acebert.loading import blend_weights
    from query_rewriter.search import DEFAULT_WEIGHTS

    return (blend_weights(spec) or DEFAULT_WEIGHTS)["bm25"]


@lru_cache(maxsize=None)
def encoder_for(spec: str) -> Encoder:
    """One encoder per model, shared by every index and query pass that uses it."""
    return CachedQueryEncoder(load_encoder(spec), max_entries=None)


def engine_systems(engine: SearchEngine, models: Sequence[IndexSpec], queries: Queries,
                   dev_qrels: Qrels, candidates: int) -> tuple[list[System], list[BreadthRun], int]:
    """Every row for one engine (indices already filled), the dense legs by breadth, and how many
    hybrids were spot-checked."""
    def dev_ndcg(rankings: dict[str, list[str]]) -> dict[str, float]:
        return per_query(dev_qrels, to_run(rankings))

    standard = HybridSearcher.over(engine, encoder_for(STANDARD.encoder), STANDARD.names.read_alias)
    answers = ask_all(standard, "bm25", queries.all, f"{engine.kind}/{STANDARD.name}")
    systems = [bm25_system(engine, STANDARD.names.read_alias, "BM25, engine default analyzer", answers,
                           queries, "bm25/standard")]
    sweeps: list[BreadthRun] = []
    checked = 0
    for position, spec in enumerate(models):
        encoder, index, label = encoder_for(spec.encoder), spec.names.read_alias, MODEL_LABELS[spec.name]
        rows, spot_checked = model_systems(
            engine, encoder, index, spec.name, label, queries, dev_ndcg,
            baseline_key=BASELINE if position == 0 else None, candidates=candidates,
        )
        systems += rows
        sweeps += breadth_sweep(engine, encoder, index, spec.name, label, queries)
        checked += spot_checked
    return systems, sweeps, checked


def breadth_record(run: BreadthRun, test_qrels: Qrels, dev_qrels: Qrels) -> dict[str, Any]:
    test = evaluate_run(test_qrels, to_run(run.test))
    return {"engine": run.engine, "model": run.model, "candidates": run.candidates, "test_ndcg@10": test["ndcg@10"],
            "test_recall@100": test["recall@100"], "dev_ndcg@10": evaluate_run(dev_qrels, to_run(run.dev))["ndcg@10"]}


def system_record(system: System, scores: Scores, dev_qrels: Qrels) -> dict[str, Any]:
    dev = evaluate_run(dev_qrels, to_run(system.dev))["ndcg@10"] if system.dev else None
    return {
        "key": system.key, "engine": system.engine, "family": system.family, "label": system.label,
        "index": system.index, "method": system.method, "bm25_weight": system.bm25_weight,
        "dev_ndcg@10": dev, "dev_curve": {str(w): v for w, v in system.dev_curve.items()},
        "weight_model": system.weight_model,
        "test": {"queries": scores.queries, **scores.means, "ndcg@10_ci95": list(scores.ndcg_ci),
                 "colour_slice_queries": scores.slice_queries, "colour_slice_ndcg@10": scores.slice_ndcg},
        "per_query_ndcg@10": scores.per_query_ndcg,
    }


def paired(system: dict[str, Any], baseline: dict[str, Any], runs: dict[str, Any], qrels: Qrels) -> dict[str, Any]:
    """``system`` against ``baseline`` on the same test queries: mean Δ nDCG@10, its CI, two paired tests."""
    base_q, system_q = baseline["per_query_ndcg@10"], system["per_query_ndcg@10"]
    deltas = [system_q[qid] - base_q[qid] for qid in sorted(base_q)]
    run, base_run = runs[system["key"]], runs[baseline["key"]]
    return {
        "baseline": baseline["key"], "baseline_label": baseline["label"],
        "baseline_ndcg@10": baseline["test"]["ndcg@10"], "system_ndcg@10": system["test"]["ndcg@10"],
        "delta": sum(deltas) / len(deltas), "delta_ci95": list(bootstrap_ci(deltas)),
        "p_fisher": paired_p_value(qrels, run, base_run, stat_test="fisher"),
        "p_student": paired_p_value(qrels, run, base_run, stat_test="student"),
        "wins": sum(d > 0 for d in deltas), "ties": sum(d == 0 for d in deltas), "losses": sum(d < 0 for d in deltas),
    }


def comparison(engine: str, records: list[dict[str, Any]], runs: dict[str, Any], split: Split) -> dict[str, Any]:
    """The client-side hybrid with the best dev nDCG@10, on test, against BM25 and against its own dense leg.

    The BM25 comparison answers the issue's question; the dense one says how much of the gain the
    BM25 leg still adds once the dense model is trained.
    """
    hybrids = [r for r in records if r["engine"] == engine and r["family"] == "Hybrid"]
    best = max(hybrids, key=lambda r: r["dev_ndcg@10"])
    bm25 = next(r for r in records if r["key"] == f"{engine}/{BASELINE}")
    dense = next(r for r in records if r["engine"] == engine and r["family"] == "Dense" and r["index"] == best["index"])
    wins, losses = wins_and_losses(bm25["per_query_ndcg@10"], best["per_query_ndcg@10"])

    def changes(items: list[Any]) -> list[dict[str, Any]]:
        return [{"query_id": c.query_id, "query": split.queries[c.query_id], "kind": split.kinds.get(c.query_id, ""),
                 "bm25": c.baseline, "hybrid": c.system, "delta": c.delta} for c in items]

    variants = [r for r in records if r["family"] == "Hybrid variant" and r["key"].startswith(best["key"] + "/")]
    return {
        "engine": engine, "best": best["key"], "best_label": best["label"],
        "versus": [paired(best, baseline, runs, split.qrels) for baseline in (bm25, dense)],
        "variants": [{"label": r["label"], "versus": [paired(r, baseline, runs, split.qrels)
                                                       for baseline in (best, dense)]} for r in variants],
        "largest_wins": changes(wins), "largest_losses": changes(losses),
    }


def write_results(out: Path, payload: dict[str, Any]) -> Path:
    """``docs/results/<name>.json`` for a report under ``docs/`` (via bench.report), else ``<out>.json``."""
    if out.resolve().parent == RESULTS.parent:
        return write_json(out.stem, payload)
    path = out.with_suffix(".json")
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), **payload}, indent=2, default=str) + "\n")
    return path


def run_engines(args: argparse.Namespace, events: list[dict[str, Any]], queries: Queries,
                dev_qrels: Qrels) -> tuple[list[Ingestion], list[System], list[BreadthRun], int]:
    """Start the services, fill every index on every engine, and collect every row's rankings."""
    ingestions: list[Ingestion] = []
    systems: list[System] = []
    sweeps: list[BreadthRun] = []
    spot_checked = 0
    candidates = breadth(args.candidates, len(events))["candidates"]
    with local_stack(args.run_dir, engines=args.engines, heap="2g") as stack:
        for kind in args.engines:
            engine = connect(kind, stack.engines[kind].url)
            try:
                for spec in (STANDARD, *args.models):
                    encoder = encoder_for(spec.encoder)
                    ingestions.append(ingest(stack, engine, spec, events, encoder.dimension,
                                             encoder.model_version, args.catalog, args.reindex))
                rows, engine_sweeps, checked = engine_systems(engine, args.models, queries, dev_qrels, candidates)
                systems += rows
                sweeps += engine_sweeps
                spot_checked += checked
            finally:
                engine.close()
    systems.sort(key=lambda s: (args.engines.index(s.engine), FAMILY_ORDER.index(s.family)))
    return ingestions, systems, sweeps, spot_checked


def setup_record(args: argparse.Namespace, events: list[dict[str, Any]], test: Split, dev: Split,
                 attributes: Path, slice_ids: set[str], spot_checked: int) -> dict[str, Any]:
    """What was measured, on what, and how: the report's setup section."""
    return {
        "catalog": str(args.catalog), "products": len(events),
        "products_with_image": sum("image" in event for event in events),
        "test": {"queries": str(args.queries), "qrels": str(args.qrels), "count": len(test.queries)},
        "dev": {"queries": str(args.dev_queries), "qrels": str(args.dev_qrels), "count": len(dev.queries)},
        "colour_slice": {"attributes": str(attributes) if slice_ids else None, "queries": len(slice_ids)},
        "depth": DEPTH, **breadth(args.candidates, len(events)), "weight_grid": list(WEIGHT_GRID),
        "rrf_bm25_weight": RRF_BM25_WEIGHT,
        "engines": args.engines, "spot_checked_hybrid_answers": spot_checked,
        "models": {spec.name: {"label": MODEL_LABELS[spec.name], "encoder": spec.encoder,
                               "with_images": spec.with_images} for spec in args.models},
    }


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    command = command_line("bench.relevance", argv)
    events = catalog_events(args.catalog, limit=args.limit_products)
    product_ids = {event["product_id"] for event in events}
    test = load_split(args.queries, args.qrels, product_ids, args.limit_queries)
    dev = load_split(args.dev_queries, args.dev_qrels, product_ids, args.limit_queries)
    attributes = args.attributes or args.catalog / "attributes.csv"
    slice_ids = colour_slice_ids(args.catalog, args.queries, test, attributes)
    print(f"{len(events)} products, {len(test.queries)} test and {len(dev.queries)} dev queries, "
          f"{len(slice_ids)} in the colour slice", flush=True)

    ingestions, systems, sweeps, spot_checked = run_engines(args, events, Queries(test.queries, dev.queries),
                                                            dev.qrels)
    runs = {system.key: to_run(system.test) for system in systems}
    records = [system_record(s, score(test.qrels, runs[s.key], slice_ids), dev.qrels) for s in systems]
    payload: dict[str, Any] = {
        "command": command,
        "setup": setup_record(args, events, test, dev, attributes, slice_ids, spot_checked),
        "ingestion": [vars(i) for i in ingestions],
        "systems": records,
        "comparisons": [comparison(kind, records, runs, test) for kind in args.engines],
        "knn_breadth": [breadth_record(run, test.qrels, dev.qrels) for run in sweeps],
        "wall_s": round(time.perf_counter() - started, 1),
    }
    json_path = write_results(args.out, payload)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(relevance_markdown.render(payload, relevance_markdown.kept_discussion(args.out)))
    print(f"wrote {args.out} and {json_path} in {payload['wall_s'] / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
