"""The identifier and brand probes: queries built from the catalogue, where exact words matter.

``python -m bench.probes [--catalog DIR] [--engine opensearch] [--encoder minilm] [--queries N]
[--brand-queries N] [--exact]``

The judged query sets describe products ("red handbag for women"); shoppers also type what
they saw on a box or a previous order: a brand and a model or line name ("Gel Pulse III",
"Baggit Ishqx"). This probe measures that case, which is where a BM25 leg should earn its place.

A deterministic generator (:func:`identifier_queries`) builds the queries from ``products.csv``
alone, with no hand-picked query and no judgment file: the brand (the title's first word) plus
the title's distinctive words (words that at most ``RARE_DF`` titles of the catalogue use), in
title order. A query is kept only when exactly one title holds all of its words, so the product
it came from is the one right answer. The queries then run through the real engine as BM25,
dense (kNN) and hybrid (min-max with the blend stored with the model, as a deployment of it
serves, or 0.5/0.5 for a model without one) and each gets success@1 and MRR@10, with paired 95%
bootstrap intervals of the differences.

The brand probe asks what shoppers type more often than a model name: a brand and a kind of
product ("puma shoes"). :func:`brand_queries` builds them from the titles alone: the brand is a
title's first word and the kind its last, and every product whose title has that first and last
word is relevant (nDCG@10, binary). The same rows run, with the hybrid also without its brand rule
(:mod:`query_rewriter.brand`). On a catalogue without a brand column the rule reads a brand the
way this generator defines one (the word titles lead with), so the probe shows what the rule
recovers, not that it generalises; the
judged queries in ``docs/relevance.md`` show that it leaves descriptive queries alone.

``--exact`` runs the same rows without an engine (:func:`exact_search`), to compare checkpoints in
minutes; its in-process BM25 is not the engine's, so its rows compare with other exact rows only.

Writes ``docs/results/probe-identifiers.json`` and ``docs/probes.md``. The generators and the
metrics are unit-tested in ``tests/unit/test_bench_probes.py``.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT
from query_rewriter.blend import leg_weights

DEFAULT_CATALOG = (REPO_ROOT / DEFAULT_DATA_DIR).resolve()
RESULTS_NAME = "probe-identifiers"
MARKDOWN = REPO_ROOT / "docs" / "probes.md"
RARE_DF = 3
MAX_DISTINCTIVE = 3
SERVED_MODES: dict[str, dict[str, Any]] = {
    "bm25": {"mode": "bm25"}, "knn": {"mode": "knn"}, "hybrid": {"mode": "hybrid"},
}
"""Each row's search request fields; "hybrid" is the searcher's blend: the model's stored weights
(``blend.json``), else min-max 0.5/0.5, with the known-item and brand rules."""
NO_RULE = "hybrid without the known-item rule"
MODES: dict[str, dict[str, Any]] = {**SERVED_MODES, NO_RULE: {"mode": "hybrid", "known_item": False}}
NO_BRAND_RULE = "hybrid without the brand rule"
BRAND_MODES: dict[str, dict[str, Any]] = {**SERVED_MODES, NO_BRAND_RULE: {"mode": "hybrid", "brand_first": False}}
BRAND_MIN_PRODUCTS = 3
"""A brand and kind become a query when at least this many titles have them (and the brand
``BRAND_MIN_TITLES`` titles in all), so that a page of ten has several right answers to rank."""
BRAND_MIN_TITLES = 5


def at_weight(mode: str, bm25_weight: float) -> str:
    """The row name of ``mode`` ("hybrid" or :data:`NO_RULE`) blended at a given BM25 weight."""
    return f"{mode}, BM25 {bm25_weight}"


def modes(bm25_weights: Sequence[float] = ()) -> dict[str, dict[str, Any]]:
    """:data:`MODES` plus, per extra BM25 weight, the hybrid with and without the known-item rule at
    that weight (to compare the stored blend with others)."""
    rows = dict(MODES)
    for weight in bm25_weights:
        weights = leg_weights(weight)
        rows[at_weight("hybrid", weight)] = {"mode": "hybrid", "weights": weights}
        rows[at_weight(NO_RULE, weight)] = {"mode": "hybrid", "known_item": False, "weights": weights}
    return rows
K = 10
EXACT_ENGINE = "none (exact search in process: Okapi BM25 over title and category, exact cosine)"
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class KnownItem:
    query_id: str
    query: str
    product_id: str


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def identifier_queries(titles: Mapping[str, str], limit: int | None = None, seed: int = 0) -> list[KnownItem]:
    """Known-item queries from ``{product_id: title}`` (see the module docstring), in a seeded order."""
    tokens = {pid: [w.lower() for w in words(title)] for pid, title in titles.items()}
    df = Counter(token for toks in tokens.values() for token in set(toks))
    holders: dict[str, set[str]] = {}
    for pid, toks in tokens.items():
        for token in set(toks):
            holders.setdefault(token, set()).add(pid)
    items = []
    for pid in sorted(titles):
        original = words(titles[pid])
        if len(original) < 2:
            continue
        brand, rest = original[0], original[1:]
        distinctive = [w for w in rest if df[w.lower()] <= RARE_DF and w.lower() != brand.lower()]
        distinctive = list(dict.fromkeys(distinctive))[:MAX_DISTINCTIVE]
        if not distinctive:
            continue
        query_words = [brand, *distinctive]
        matching = set.intersection(*(holders[w.lower()] for w in query_words))
        if matching == {pid}:
            items.append(KnownItem(f"id-{pid}", " ".join(query_words), pid))
    random.Random(seed).shuffle(items)
    return items[:limit] if limit is not None else items


@dataclass(frozen=True)
class BrandQuery:
    query_id: str
    query: str
    relevant: frozenset[str]


def brand_queries(titles: Mapping[str, str], limit: int | None = None, seed: int = 0) -> list[BrandQuery]:
    """"brand kind" queries from ``{product_id: title}``: a title's first word and its last, both
    alphabetic, at least 3 letters and different, in a seeded order; every product whose title has
    the same first and last word is relevant."""
    groups: dict[tuple[str, str], set[str]] = {}
    brand_titles: Counter[str] = Counter()
    for pid, title in titles.items():
        tokens = [w.lower() for w in words(title)]
        if len(tokens) < 3 or not all(w.isalpha() and len(w) >= 3 for w in (tokens[0], tokens[-1])):
            continue
        brand_titles[tokens[0]] += 1
        if tokens[0] != tokens[-1]:
            groups.setdefault((tokens[0], tokens[-1]), set()).add(pid)
    pairs = sorted(pair for pair, pids in groups.items()
                   if len(pids) >= BRAND_MIN_PRODUCTS and brand_titles[pair[0]] >= BRAND_MIN_TITLES)
    random.Random(seed).shuffle(pairs)
    items = [BrandQuery(f"brand-{brand}-{kind}", f"{brand} {kind}", frozenset(groups[(brand, kind)]))
             for brand, kind in pairs]
    return items[:limit] if limit is not None else items


def brand_scores(items: Sequence[BrandQuery], rankings: Mapping[str, Mapping[str, list[str]]]
                 ) -> dict[str, np.ndarray]:
    """Each mode's nDCG@10 per brand query (binary judgments), in query id order, ready to pair."""
    from bench.probe_colour import query_scores

    return query_scores({item.query_id: {pid: 1 for pid in item.relevant} for item in items}, rankings)


def ndcg_difference(scores: Mapping[str, np.ndarray], a: str, b: str) -> dict[str, Any]:
    """Mean nDCG@10 of ``a`` minus ``b``, with a paired bootstrap interval over queries."""
    from acebert.metrics import bootstrap_ci

    diffs = scores[a] - scores[b]
    low, high = bootstrap_ci(diffs)
    return {"a": a, "b": b, "ndcg@10": float(diffs.mean()), "ci": [low, high]}


def known_item_scores(target: str, ranked: Sequence[str]) -> tuple[float, float]:
    """(success@1, reciprocal rank within the top ``K``, else 0) of one query."""
    top = list(ranked[:K])
    return float(top[:1] == [target]), (1.0 / (top.index(target) + 1) if target in top else 0.0)


def summarise(per_query: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """Mean success@1 and MRR@10 per mode, from each query's (success@1, reciprocal rank)."""
    return {mode: {"success@1": float(np.mean([s for s, _ in rows])), "mrr@10": float(np.mean([r for _, r in rows]))}
            for mode, rows in per_query.items()}


def paired_differences(per_query: Mapping[str, Sequence[tuple[float, float]]], a: str, b: str) -> dict[str, Any]:
    """Mean MRR@10 of ``a`` minus ``b``, with a paired bootstrap interval over queries."""
    from acebert.metrics import bootstrap_ci

    diffs = np.array([ra for _, ra in per_query[a]]) - np.array([rb for _, rb in per_query[b]])
    low, high = bootstrap_ci(diffs)
    return {"a": a, "b": b, "mrr@10": float(diffs.mean()), "ci": [low, high]}


@dataclass(frozen=True)
class Found:
    """One result of a probe query: the product, its title, and its BM25 leg score (None outside that leg)."""

    product_id: str
    title: str | None
    bm25: float | None


Search = Callable[[str, Mapping[str, Any]], list[Found]]
"""A probe query's top ``K`` for a row's search request fields (:data:`MODES`, :data:`BRAND_MODES`)."""


def hybrid_miss(item: KnownItem, bm25_found: Sequence[Found], hybrid_top: Sequence[str]) -> dict[str, Any]:
    """A query BM25 answers first and the hybrid does not: what the known-item rule saw (BM25's first two
    products, their titles and scores) and what the hybrid put first, so a reader can see why it did not fire."""
    return {"query": item.query, "product_id": item.product_id,
            "bm25": [{"product_id": found.product_id, "title": found.title, "score": found.bm25}
                     for found in bm25_found[:2]],
            "hybrid": list(hybrid_top[:3])}


def engine_search(searcher: Any) -> Search:
    """The rows through the real engine: the searcher as a deployment serves it."""
    from query_rewriter.search import SearchRequest

    def search(text: str, fields: Mapping[str, Any]) -> list[Found]:
        hits = searcher.search(SearchRequest(text, size=K, depth=100, **fields)).hits
        return [Found(hit.product_id, hit.source.get("title"), hit.leg_scores.get("bm25")) for hit in hits]

    return search


def exact_search(encoder: Any, catalog: Path, texts: Sequence[str], bm25_weight: float) -> Search:
    """The rows without an engine, for comparing checkpoints in minutes: Okapi BM25 over title and category
    in process, the model's exact cosine top 100, their min-max blend, and the searcher's word rules
    (:func:`query_rewriter.search.word_rules`) on the rewritten query, as the relevance bench's offline fusion
    applies them. Both legs of every text are computed up front, the query vectors in one batch.

    Why: the probes compare the vectors of two checkpoints; exact search has no HNSW build noise and needs
    no ingestion. In-process BM25 is not the engine's analyzer (it scores title and category only), so its
    rows differ from the engine's by a few points; compare exact rows with exact rows.
    """
    from acebert.blend_choice import DEPTH
    from acebert.pairs import bm25_runs
    from bench.probe_colour import bm25_documents, exact_dense
    from indexer.catalog import catalog_events
    from query_rewriter.blend import blend
    from query_rewriter.rewrite import rewrite
    from query_rewriter.search import word_rules

    events = catalog_events(catalog)
    titles = {str(event["product_id"]): event["title"] for event in events}
    brands = {str(event["product_id"]): event.get("brand") for event in events}
    unique = dict.fromkeys(rewrite(text).text for text in texts)
    keys = {text: f"q{n}" for n, text in enumerate(unique)}
    bm25 = bm25_runs({key: text for text, key in keys.items()}, bm25_documents(events), DEPTH)
    dense = exact_dense(encoder, True, events, {key: text for text, key in keys.items()}, "probe", catalog)

    def search(text: str, fields: Mapping[str, Any]) -> list[Found]:
        sent = rewrite(text).text
        bm25_leg, knn_leg = bm25[keys[sent]], list(dense[keys[sent]].items())
        if fields["mode"] == "bm25":
            ranked = [pid for pid, _ in bm25_leg]
        elif fields["mode"] == "knn":
            ranked = [pid for pid, _ in knn_leg]
        else:
            fused = blend({"bm25": bm25_leg, "knn": knn_leg}, fields.get("weights") or leg_weights(bm25_weight))
            ranked = [item.doc_id for item in word_rules(fused, sent, bm25_leg, titles, brands,
                                                         fields.get("brand_first", True),
                                                         fields.get("known_item", True))]
        scores = dict(bm25_leg)
        return [Found(pid, titles.get(pid), scores.get(pid)) for pid in ranked[:K]]

    return search


def probe(search: Search, items: Sequence[KnownItem], brands: Sequence[BrandQuery],
          rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every row of both probes through ``search``: per-query known-item scores, examples, misses, and the
    brand queries' rankings."""
    from tqdm import tqdm

    per_query: dict[str, list[tuple[float, float]]] = {mode: [] for mode in rows}
    examples, misses = [], []
    for item in tqdm(items, desc="identifier queries", unit="query"):
        answers = {mode: search(item.query, fields) for mode, fields in rows.items()}
        tops = {mode: [found.product_id for found in answer] for mode, answer in answers.items()}
        for mode in rows:
            per_query[mode].append(known_item_scores(item.product_id, tops[mode]))
        if len(examples) < 8:
            examples.append({"query": item.query, "product_id": item.product_id,
                             **{mode: tops[mode][:3] for mode in MODES}})
        if per_query["hybrid"][-1][0] < per_query["bm25"][-1][0]:
            misses.append(hybrid_miss(item, answers["bm25"], tops["hybrid"]))
    brand_rankings: dict[str, dict[str, list[str]]] = {mode: {} for mode in BRAND_MODES}
    for brand_item in tqdm(brands, desc="brand queries", unit="query"):
        for mode, fields in BRAND_MODES.items():
            brand_rankings[mode][brand_item.query_id] = [found.product_id for found in search(brand_item.query, fields)]
    return {"per_query": per_query, "examples": examples, "misses": misses, "brand_rankings": brand_rankings}


def _log(message: str) -> None:
    print(f"[probes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from acebert.data import load_catalog
    from acebert.loading import load_encoder
    from bench.relevance import served_bm25_weight

    catalog = load_catalog(args.catalog)
    titles = dict(zip(catalog["product_id"], catalog["title"]))
    items = identifier_queries(titles, args.queries, args.seed)
    brands = brand_queries(titles, args.brand_queries, args.seed)
    _log(f"{len(items)} identifier queries and {len(brands)} brand queries from {len(catalog)} products")
    encoder = load_encoder(args.encoder)
    blend = served_bm25_weight(args.encoder)
    rows = modes(args.bm25_weight)
    ingestion_reused = None
    if args.exact:
        texts = [item.query for item in items] + [brand_item.query for brand_item in brands]
        found = probe(exact_search(encoder, args.catalog, texts, blend), items, brands, rows)
    else:
        from bench.relevance_stack import IndexSpec, ingest
        from devstack import local_stack
        from engines import connect
        from indexer.catalog import catalog_events
        from query_rewriter.search import HybridSearcher

        spec = IndexSpec(args.encoder.replace(":", "-").replace("/", "-")[-40:].strip("-").lower(), args.encoder)
        with local_stack(args.run_dir, engines=(args.engine,), heap="2g") as stack:
            engine = connect(args.engine, stack.engines[args.engine].url)
            try:
                ingestion = ingest(stack, engine, spec, catalog_events(args.catalog), encoder.dimension,
                                   encoder.model_version, args.catalog, args.reindex)
                ingestion_reused = ingestion.reused
                searcher = HybridSearcher.over(engine, encoder, spec.names.read_alias, weights=leg_weights(blend))
                found = probe(engine_search(searcher), items, brands, rows)
            finally:
                engine.close()
    per_query, brand_rankings = found["per_query"], found["brand_rankings"]
    scores = brand_scores(brands, brand_rankings)
    return {"catalog": str(args.catalog), "products": len(catalog), "queries": len(items),
            "engine": EXACT_ENGINE if args.exact else args.engine,
            "encoder": args.encoder, "model_version": encoder.model_version, "seed": args.seed,
            "blend": blend, "bm25_weights": args.bm25_weight,
            "ingestion_reused": ingestion_reused, "scores": summarise(per_query),
            "differences": [paired_differences(per_query, "bm25", "knn"),
                            paired_differences(per_query, "hybrid", "knn"),
                            paired_differences(per_query, "hybrid", "bm25"),
                            paired_differences(per_query, "hybrid", NO_RULE),
                            *(paired_differences(per_query, at_weight("hybrid", w), other)
                              for w in args.bm25_weight for other in ("bm25", at_weight(NO_RULE, w)))],
            "examples": found["examples"], "misses": found["misses"],
            "brands": {"queries": len(brands), "min_products": BRAND_MIN_PRODUCTS, "min_titles": BRAND_MIN_TITLES,
                       "scores": {mode: float(values.mean()) for mode, values in scores.items()},
                       "differences": [ndcg_difference(scores, "hybrid", NO_BRAND_RULE),
                                       ndcg_difference(scores, "hybrid", "bm25"),
                                       ndcg_difference(scores, "hybrid", "knn"),
                                       ndcg_difference(scores, NO_BRAND_RULE, "bm25")],
                       "examples": [{"query": item.query, "relevant": len(item.relevant),
                                     **{mode: brand_rankings[mode][item.query_id][:3] for mode in BRAND_MODES}}
                                    for item in brands[:8]]}}


def markdown(payload: Mapping[str, Any]) -> str:
    m = payload["machine"]
    lines = [
        "# Relevance probes",
        "",
        "## Identifier queries: where the BM25 leg earns its place",
        "",
        f"Generated by `{payload['command']}` (commit {payload['commit']}, {payload['date']}) on {m['nproc']} cores "
        f"({m['cpu']}), {m['memory_gib']} GiB, {payload['engine']}. Dense model: `{payload['model_version']}`.",
        "",
        f"{payload['queries']} known-item queries built from the {payload['products']:,} titles of "
        f"`{payload['catalog']}` by `bench.probes.identifier_queries` (seed {payload['seed']}): the brand (the "
        f"title's first word) plus up to {MAX_DISTINCTIVE} words that at most {RARE_DF} titles use, kept only when "
        "exactly one title holds every word of the query. The product the query came from is the one right answer. "
        "No query is picked by hand and no judgment file is read.",
        "",
        "| mode | success@1 | MRR@10 |",
        "|---|---:|---:|",
    ]
    for mode, s in payload["scores"].items():
        lines.append(f"| {mode} | {s['success@1']:.3f} | {s['mrr@10']:.3f} |")
    lines += ["", "Paired differences of MRR@10 (95% bootstrap interval over queries):", ""]
    for d in payload["differences"]:
        lines.append(f"- {d['a']} − {d['b']}: {d['mrr@10']:+.3f} ({d['ci'][0]:+.3f} to {d['ci'][1]:+.3f})")
    added, lost, rule = payload["differences"][1], payload["differences"][2], payload["differences"][3]
    blend = payload.get("blend", 0.5)
    lines += ["", f"Reading: on identifier queries the BM25 leg adds {added['mrr@10']:+.3f} MRR@10 to the dense leg "
              f"alone; the hybrid as served (min-max, BM25 {blend:g} / kNN {1 - blend:g}, the model's stored blend or "
              f"0.5/0.5 without one) is {lost['mrr@10']:+.3f} against BM25 alone, and its "
              f"known-item rule (`query_rewriter.known_item`) adds {rule['mrr@10']:+.3f} to the same blend without it. "
              "The rule and this generator share an idea (every query word in one title), so this probe shows what "
              "the rule can recover, not that it generalises: `docs/relevance.md` shows what it does on judged "
              "queries that describe products in words. `--encoder CHECKPOINT` gives the same table for a trained "
              "ACE-BERT."]
    bm25 = payload["scores"]["bm25"]["success@1"]
    for weight in payload.get("bm25_weights", []):
        scores = payload["scores"][at_weight("hybrid", weight)]
        without = payload["scores"][at_weight(NO_RULE, weight)]["success@1"]
        lines += ["", f"At BM25 {weight} (kNN the rest) the hybrid's success@1 is {scores['success@1']:.3f} against "
                  f"BM25's {bm25:.3f}, and {without:.3f} without the known-item rule: the lower the BM25 weight, "
                  "the more the identifier queries rest on the rule."]
    lines += ["", "Examples (top 3 product ids per mode; hybrid with the rule):", "",
              "| query | answer | bm25 | knn | hybrid |",
              "|---|---|---|---|---|"]
    for e in payload["examples"]:
        lines.append(f"| {e['query']} | {e['product_id']} | {', '.join(e['bm25'])} | {', '.join(e['knn'])} | "
                     f"{', '.join(e['hybrid'])} |")
    misses = payload.get("misses", [])
    lines += ["", f"Queries BM25 answers first and the hybrid does not ({len(misses)}): BM25's first two products "
              "with their raw BM25 scores, as the known-item rule saw them, and the hybrid's top 3.", ""]
    if misses:
        lines += ["| query | answer | BM25 first (score) | BM25 second (score) | hybrid |", "|---|---|---|---|---|"]
    for miss in misses:
        pair = (miss["bm25"] + [None, None])[:2]
        cells = [f"{hit['product_id']} {hit['title']} ({hit['score']:.2f})" if hit else "-" for hit in pair]
        hybrid = ", ".join(miss["hybrid"])
        lines.append(f"| {miss['query']} | {miss['product_id']} | {cells[0]} | {cells[1]} | {hybrid} |")
    if payload.get("brands"):
        lines += brand_markdown(payload["brands"], payload["catalog"], payload["seed"], blend)
    lines.append("")
    return "\n".join(lines)


def brand_markdown(brands: Mapping[str, Any], catalog: str, seed: int, blend: float) -> list[str]:
    """The brand probe's section of ``docs/probes.md``."""
    lines = ["", "## Brand queries: a brand and a kind of product", "",
             f"{brands['queries']} queries \"brand kind\" built from the titles of `{catalog}` by "
             f"`bench.probes.brand_queries` (seed {seed}): a title's first word as the brand and its last as the "
             f"kind, kept where at least {brands['min_products']} titles have both (and {brands['min_titles']} the "
             "brand); every product whose title has that first and last word is relevant (binary nDCG@10). No "
             "query is picked by hand and no judgment file is read.", "",
             "| mode | nDCG@10 |", "|---|---:|"]
    lines += [f"| {mode} | {value:.3f} |" for mode, value in brands["scores"].items()]
    lines += ["", "Paired differences of nDCG@10 (95% bootstrap interval over queries):", ""]
    lines += [f"- {d['a']} − {d['b']}: {d['ndcg@10']:+.3f} ({d['ci'][0]:+.3f} to {d['ci'][1]:+.3f})"
              for d in brands["differences"]]
    rule = brands["differences"][0]
    scores = brands["scores"]
    lines += ["", f"Reading: the dense leg alone scores {scores['knn']:.3f} on brand queries against BM25's "
              f"{scores['bm25']:.3f}, and the blend at BM25 {blend:g} without the brand rule "
              f"{scores[NO_BRAND_RULE]:.3f}; the brand rule (`query_rewriter.brand`) adds {rule['ndcg@10']:+.3f}. "
              "The rule reads a brand as this generator defines one (the word titles lead with), so this shows "
              "what it recovers, not that it generalises; on the judged queries (`docs/relevance.md`) it must "
              "leave the ranking as it was.", "",
              "Examples (top 3 product ids per mode):", "",
              "| query | relevant | bm25 | knn | hybrid | hybrid without the rule |", "|---|---:|---|---|---|---|"]
    lines += [f"| {e['query']} | {e['relevant']} | {', '.join(e['bm25'])} | {', '.join(e['knn'])} | "
              f"{', '.join(e['hybrid'])} | {', '.join(e[NO_BRAND_RULE])} |" for e in brands["examples"]]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from devstack.install import cache_root

    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="directory with products.csv (and images)")
    parser.add_argument("--engine", default="opensearch", choices=("opensearch", "elasticsearch"))
    parser.add_argument("--encoder", default="minilm", help="the dense model's encoder spec (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=500, help="at most this many queries (default: %(default)s)")
    parser.add_argument("--brand-queries", type=int, default=300,
                        help="at most this many brand queries (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bm25-weight", type=lambda text: [float(w) for w in text.split(",")], default=[],
                        help="also report the hybrid at these BM25 weights, comma-separated (the 'hybrid' row "
                             "uses the model's stored blend.json, or 0.5/0.5)")
    parser.add_argument("--exact", action="store_true",
                        help="no engine: in-process Okapi BM25 and exact cosine search, the same blend and word rules "
                             "(compares checkpoints in minutes; rows differ from the engine's, compare like with like)")
    parser.add_argument("--reindex", action="store_true", help="rebuild the index even when it is current")
    parser.add_argument("--run-dir", type=Path, default=cache_root() / "bench-probes",
                        help="engine data and worker logs (kept between runs so the index can be reused)")
    parser.add_argument("--results", type=Path, default=None, help="output directory (default: docs/results, docs/)")
    args = parser.parse_args(argv)
    if not all(0.0 <= weight <= 1.0 for weight in args.bm25_weight):
        parser.error(f"--bm25-weight: each weight must be between 0 and 1, not {args.bm25_weight}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import command_line, stamp, write_report

    args = parse_args(argv)
    payload = {**stamp(command_line("bench.probes", argv)), **run(args)}
    paths = write_report(RESULTS_NAME, payload, markdown, MARKDOWN, args.results)
    _log(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
