"""The blind-title colour probe: colour words removed from the titles, so only a photo can carry the colour.

``python -m bench.probe_colour [--catalog DIR] [--queries TSV --qrels TSV] [--models minilm,acebert:CKPT,..]
[--exact [--headroom] [--photo-leg W[,W..]]]``

The judged colour queries are few when the titles name the colour: the title then answers them
and the image tokens have nothing to add. This probe indexes the same catalogue with every colour
word removed from the titles only (images and categories stay), and asks it the split's colour
queries (those that name a colour from :data:`COLOURS`). A title-only model can now place a
product's colour only by luck; a title + image model can see it. Each model gets its dense and
hybrid rows next to BM25 (the hybrid blends with the weights stored with the model, as a
deployment of it does, or 0.5/0.5 for a model without them), with nDCG@10 and a paired 95%
bootstrap interval against BM25, and each checkpoint run both ways (``acebert-title:CKPT`` and
``acebert:CKPT``) gets an image-gain row: dense title + image against dense title only, paired
per query (the issue #11 target is +20%). A checkpoint other than the default one is named by
its directory, so several can be compared in one run (``acebert:CKPT_A,acebert:CKPT_B``).
``--candidates N`` widens the kNN leg's HNSW search (``ef_search``) so that, on a catalogue of this
size, it is close to exact: approximate search differs between builds of the same vectors by
about 0.01 nDCG@10 here, which is the size of the image gain being measured. ``--exact`` leaves
the engine out (:func:`exact_rankings`) to compare checkpoints in minutes. ``--headroom`` (with
``--exact``) adds what the target can be measured against: each title-only model with the colour
words kept where a product has a photo (:func:`photo_as_words`), the most a photo could add.
``--photo-leg`` (with ``--exact``) adds each title + image model with a second, weighted kNN leg over
its photos' own vectors (:func:`with_photo_leg`).

:data:`COLOURS` is a fixed, generic list of English colour names. It is not read from
``attributes.csv``, and training must not use it: an augmentation tuned to this probe would only
measure itself. Writes ``docs/results/probe-colour.json`` and ``docs/probe-colour.md``; the pure
parts are unit-tested in ``tests/unit/test_bench_probe_colour.py``.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from acebert.config import REPO_ROOT

RESULTS_NAME = "probe-colour"
MARKDOWN = REPO_ROOT / "docs" / "probe-colour.md"
EXACT_RESULTS_NAME = "probe-colour-exact"
EXACT_MARKDOWN = REPO_ROOT / "docs" / "probe-colour-exact.md"
COLOURS = (
    "black", "white", "grey", "gray", "red", "blue", "navy", "green", "olive", "yellow", "orange", "pink",
    "purple", "violet", "lavender", "brown", "tan", "beige", "cream", "khaki", "maroon", "burgundy", "gold",
    "golden", "silver", "bronze", "copper", "peach", "coral", "magenta", "turquoise", "teal", "aqua", "mustard",
    "rust", "charcoal", "melange", "multicolour", "multicolor", "off-white", "nude", "mauve", "lime",
    "fuchsia", "sea green",
)
_COLOUR = re.compile(r"(?<![\w-])(" + "|".join(re.escape(c) for c in sorted(COLOURS, key=len, reverse=True))
                     + r")(?![\w-])", re.IGNORECASE)
K = 10


def blind(title: str) -> str:
    """``title`` without its colour words; the title itself if nothing else is left."""
    stripped = " ".join(_COLOUR.sub(" ", title).split())
    return stripped or title


def names_a_colour(text: str) -> bool:
    return _COLOUR.search(text) is not None


def blind_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Catalogue events with blinded titles; every other field as it was."""
    return [{**event, "title": blind(event["title"])} for event in events]


def query_scores(qrels: Mapping[str, Mapping[str, int]],
                 rankings: Mapping[str, Mapping[str, list[str]]]) -> dict[str, np.ndarray]:
    """Each system's nDCG@10 per query, as arrays in one query order, ready to pair."""
    from acebert.metrics import per_query
    from bench.relevance_eval import to_run

    ids = sorted(qrels)
    scores = {}
    for name, ranked in rankings.items():
        by_query = per_query(dict(qrels), to_run(ranked))
        scores[name] = np.array([by_query[qid] for qid in ids])
    return scores


def ndcg_rows(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Mapping[str, list[str]]],
              baseline: str) -> list[dict[str, Any]]:
    """Mean nDCG@10 of each system and its paired difference from ``baseline`` with a 95% interval."""
    from acebert.metrics import bootstrap_ci

    scores = query_scores(qrels, rankings)
    base = scores[baseline]
    rows = []
    for name, mine in scores.items():
        low, high = bootstrap_ci(mine - base)
        rows.append({"system": name, "ndcg@10": float(mine.mean()), "vs_baseline": float((mine - base).mean()),
                     "ci": [low, high]})
    return rows


def probe_name(kind: str, checkpoint: str | None, default: Path) -> str:
    """A model's row and index name: its kind, plus the checkpoint directory unless it is ``default``."""
    if checkpoint is None or Path(checkpoint) == default:
        return kind
    return f"{kind}@{Path(checkpoint).name}"


def image_twin(label: str) -> str | None:
    """The title + image row of the same checkpoint as a title-only ACE-BERT row, or None for any other row."""
    return label.replace("knn acebert-title", "knn acebert", 1) if label.startswith("knn acebert-title") else None


def image_gain_rows(qrels: Mapping[str, Mapping[str, int]],
                    rankings: Mapping[str, Mapping[str, list[str]]]) -> list[dict[str, Any]]:
    """Dense title + image against dense title only, per checkpoint that ran both ways.

    The difference is paired per query, with a 95% bootstrap interval; ``relative`` is it over the
    title-only nDCG@10, the unit of the issue's target.
    """
    from acebert.metrics import bootstrap_ci

    scores = query_scores(qrels, rankings)
    rows = []
    for label in scores:
        with_image = image_twin(label)
        if with_image not in scores:
            continue
        title = scores[label]
        for row in (with_image, *(other for other in scores if other.startswith(with_image + PHOTO_LEG))):
            image = scores[row]
            low, high = bootstrap_ci(image - title)
            rows.append({"model": row.removeprefix("knn "), "title_only": float(title.mean()),
                         "title_image": float(image.mean()), "gain": float((image - title).mean()),
                         "relative": float(image.mean() / title.mean() - 1) if title.mean() else float("nan"),
                         "ci": [low, high]})
    return rows


def _log(message: str) -> None:
    print(f"[probe-colour {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


Rankings = dict[str, dict[str, list[str]]]  # row -> query id -> product ids, best first


def model_rows(specs: Sequence[Any]) -> list[tuple[Any, str]]:
    """Each model spec with its row name (:func:`probe_name`), which also names its engine index.

    Rows carry the checkpoint's directory, so several checkpoints of one kind (a variant's seeds) are compared in
    one run (:func:`parse_args` refuses two specs that would share a row, and so an index).
    """
    from bench.relevance import DEFAULT_CHECKPOINT

    return [(spec, probe_name(spec.name, None if spec.encoder == "minilm" else spec.encoder, DEFAULT_CHECKPOINT))
            for spec in specs]


def engine_rankings(args: argparse.Namespace, specs: Sequence[Any], events: Sequence[Mapping[str, Any]],
                    queries: Mapping[str, str], blends: Mapping[str, float]) -> Rankings:
    """Every row through the real engine: the blinded catalogue ingested per model, then BM25, kNN and the
    hybrid at the model's BM25 weight in ``blends`` (by hybrid row name)."""
    from dataclasses import replace

    from tqdm import tqdm

    from bench.relevance import breadth, encoder_for
    from bench.relevance_stack import ingest
    from devstack import local_stack
    from engines import connect
    from query_rewriter.blend import leg_weights
    from query_rewriter.search import HybridSearcher, SearchRequest

    rankings: Rankings = {}
    candidates = breadth(args.candidates, len(events))["candidates"]
    with local_stack(args.run_dir, engines=(args.engine,), heap="2g") as stack:
        engine = connect(args.engine, stack.engines[args.engine].url)
        try:
            for spec, name in model_rows(specs):
                spec = replace(spec, name="blind-" + re.sub(r"[^a-z0-9_-]", "-", name.lower()))
                encoder = encoder_for(spec.encoder)
                ingest(stack, engine, spec, events, encoder.dimension, encoder.model_version, args.catalog,
                       args.reindex)
                weights = leg_weights(blends[f"hybrid {name}"])
                searcher = HybridSearcher.over(engine, encoder, spec.names.read_alias, candidates, weights)
                modes = ("knn", "hybrid") if rankings else ("bm25", "knn", "hybrid")
                for mode in modes:
                    label = "bm25" if mode == "bm25" else f"{mode} {name}"
                    rankings[label] = {
                        qid: [h.product_id for h in searcher.search(
                            SearchRequest(text, mode=mode, size=K, depth=100)).hits]  # type: ignore[arg-type]
                        for qid, text in tqdm(queries.items(), desc=label, unit="query")}
        finally:
            engine.close()
    return rankings


def exact_rankings(specs: Sequence[Any], events: Sequence[Mapping[str, Any]], queries: Mapping[str, str],
                   blends: Mapping[str, float], catalog: Path, photo_weights: Sequence[float] = ()) -> Rankings:
    """The same rows without an engine: Okapi BM25 over title and category in process, each model's exact
    cosine top 100, and their min-max blend at the model's weight in ``blends`` (no known-item rule).

    Why: comparing checkpoints is about the vectors, and an HNSW build moves these rows by about
    0.01, the size of the effect measured; exact search has no build noise and needs no ingestion,
    so a pair of checkpoints is compared in minutes. The engine path is the one that shows what a
    deployment serves. ``photo_weights`` adds a row per weight to each title + image model:
    :func:`with_photo_leg`.
    """
    from acebert.blend_choice import DEPTH
    from acebert.pairs import bm25_runs
    from bench.relevance import encoder_for
    from query_rewriter.blend import blend, leg_weights

    bm25 = bm25_runs(queries, bm25_documents(events), DEPTH)
    rankings: Rankings = {"bm25": {qid: [pid for pid, _ in bm25[qid][:K]] for qid in queries}}
    for spec, name in model_rows(specs):
        encoder = encoder_for(spec.encoder)
        dense = exact_dense(encoder, spec.with_images, events, queries, name, catalog)
        weights = leg_weights(blends[f"hybrid {name}"])
        rankings[f"knn {name}"] = {qid: list(dense[qid])[:K] for qid in queries}
        if photo_weights and spec.with_images and spec.encoder != "minilm":  # MiniLM never reads a photo
            photo = exact_dense(encoder, True, photo_events(events), queries, f"{name} [photo]", catalog)
            for weight in photo_weights:
                rankings[f"knn {name}{PHOTO_LEG}{weight:g}"] = with_photo_leg(dense, photo, weight)
        rankings[f"hybrid {name}"] = {
            qid: [item.doc_id for item in blend({"bm25": bm25[qid], "knn": list(dense[qid].items())}, weights)[:K]]
            for qid in queries}
    return rankings


def bm25_documents(events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Product id -> the text the in-process BM25 leg scores: title and category (the engines' BM25 also reads
    the fields a catalogue event may add, such as the brand and the description)."""
    return {str(event["product_id"]): f"{event['title']} {event.get('category') or ''}" for event in events}


def exact_dense(encoder: Any, with_images: bool, events: Sequence[Mapping[str, Any]], queries: Mapping[str, str],
                name: str, catalog: Path) -> dict[str, dict[str, float]]:
    """Each query's exact cosine top 100 over ``events`` encoded by ``encoder`` (with their photos, whose paths
    are relative to ``catalog`` as in a catalogue event, or not)."""
    from acebert.blend_choice import DEPTH
    from acebert.encoder import ProductInput
    from acebert.evaluate import encode_inputs, search

    ids = [str(event["product_id"]) for event in events]
    products = [ProductInput(event["title"], str(catalog / event["image"]) if with_images and event.get("image")
                             else None, event.get("category")) for event in events]
    vectors = encode_inputs(encoder, products, desc=f"encode {name}")
    return dict(zip(queries, search(encoder.encode_queries(list(queries.values())), vectors, ids, DEPTH)))


PHOTO_LEG = " + photo leg "


def photo_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The products with a photo, each with an empty title: the product tower's vector of a photo (and the
    category) alone, the input the image-title alignment trains against a title (``acebert.train``)."""
    return [{**event, "title": ""} for event in events if event.get("image")]


def with_photo_leg(dense: Mapping[str, Mapping[str, float]], photo: Mapping[str, Mapping[str, float]],
                   weight: float) -> dict[str, list[str]]:
    """Each query's top 10 of the dense leg min-max blended with a photo-vector leg at ``weight`` (the dense
    leg the rest), as two weighted kNN legs of an engine would be (issue #11's "image-vector leg").

    Why a leg of its own: in the title + image vector the title dominates, so a blind title can bury the
    product whose photo shows the asked colour; a second leg over the photo's own vector lets the photo
    vote separately, at a weight chosen on dev. A product without a photo is simply absent from that leg.
    """
    from query_rewriter.blend import blend

    weights = {"knn": 1 - weight, "photo": weight}
    return {qid: [item.doc_id for item in blend({"knn": list(dense[qid].items()),
                                                 "photo": list(photo[qid].items())}, weights)[:K]]
            for qid in dense}


def photo_as_words(originals: Sequence[Mapping[str, Any]],
                   blinded: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The blinded catalogue, except that a product with a photo keeps its title's colour words.

    Why: a title-only model reading this catalogue sees what a title + image model would see if every
    photo told it exactly what the colour words said. Its gain over the blind titles is the most a photo
    can add on this probe, short of the photo being a better colour source than the listing's own words;
    products without a photo stay blind, since no image can help them.
    """
    return [dict(original) if original.get("image") else dict(blind_event)
            for original, blind_event in zip(originals, blinded, strict=True)]


HEADROOM_VIEWS = ("photo as colour words", "titles intact")


def headroom_rankings(specs: Sequence[Any], views: Mapping[str, Sequence[Mapping[str, Any]]],
                      queries: Mapping[str, str], catalog: Path) -> Rankings:
    """Each title-only model's exact kNN rows on the catalogue ``views`` (by :data:`HEADROOM_VIEWS` name)."""
    from bench.relevance import encoder_for

    rankings: Rankings = {}
    for spec, name in model_rows(specs):
        if spec.with_images and spec.encoder != "minilm":  # MiniLM never reads a photo
            continue
        encoder = encoder_for(spec.encoder)
        for view, events in views.items():
            dense = exact_dense(encoder, False, events, queries, f"{name} [{view}]", catalog)
            rankings[f"knn {name} [{view}]"] = {qid: list(dense[qid])[:K] for qid in queries}
    return rankings


def headroom_rows(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Mapping[str, list[str]]]
                  ) -> list[dict[str, Any]]:
    """Per title-only model: its blind nDCG@10, the same with photos as colour words and with titles intact,
    the most a photo could add (paired, 95% interval, and relative to the blind titles: the unit of the
    issue's +20%), and, where the same checkpoint ran with its photos, the share of that the photos got."""
    from acebert.metrics import bootstrap_ci

    scores = query_scores(qrels, rankings)
    rows = []
    for label in scores:
        oracle = scores.get(f"{label} [{HEADROOM_VIEWS[0]}]")
        if oracle is None:
            continue
        blind_score, intact = scores[label], scores[f"{label} [{HEADROOM_VIEWS[1]}]"]
        low, high = bootstrap_ci(oracle - blind_score)
        most = float((oracle - blind_score).mean())
        row = {"model": label.removeprefix("knn "), "blind": float(blind_score.mean()),
               "photo_as_words": float(oracle.mean()), "intact": float(intact.mean()), "most": most,
               "ci": [low, high], "relative": most / float(blind_score.mean()) if blind_score.mean() else float("nan")}
        with_image = scores.get(image_twin(label))
        if with_image is not None:
            gain = float((with_image - blind_score).mean())
            row |= {"title_image": float(with_image.mean()), "share": gain / most if most else float("nan")}
        rows.append(row)
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    from acebert.data import load_catalog
    from bench.relevance import breadth, load_split, served_bm25_weight
    from indexer.catalog import catalog_events

    catalog = load_catalog(args.catalog)
    originals = catalog_events(args.catalog)
    if args.held_out_share is not None:
        catalog, originals = held_out(catalog, originals, args.held_out_share)
    events = blind_events(originals)
    split = load_split(args.queries, args.qrels, set(catalog["product_id"]), None)
    queries = {qid: text for qid, text in split.queries.items() if names_a_colour(text)}
    qrels = {qid: split.qrels[qid] for qid in queries}
    changed = sum(e["title"] != t for e, t in zip(events, catalog["title"]))
    _log(f"{len(queries)} colour queries; {changed} of {len(events)} titles lost a colour word")
    specs = args.models
    blends = {f"hybrid {name}": served_bm25_weight(spec.encoder) for spec, name in model_rows(specs)}
    rankings = (exact_rankings(specs, events, queries, blends, args.catalog, args.photo_leg) if args.exact
                else engine_rankings(args, specs, events, queries, blends))
    headroom = {}
    if args.headroom:
        views = dict(zip(HEADROOM_VIEWS, (photo_as_words(originals, events), originals)))
        headroom = headroom_rankings(specs, views, queries, args.catalog)
    return {"catalog": str(args.catalog), "queries_file": str(args.queries),
            "engine": "none (exact search in process)" if args.exact else args.engine, "exact": args.exact,
            "photo_leg": list(args.photo_leg),
            "products": len(events), "blinded_titles": changed, "held_out_share": args.held_out_share,
            **breadth(args.candidates, len(events)),
            "colour_queries": len(queries),
            "blends": blends,
            "models": [spec.encoder for spec in specs], "rows": ndcg_rows(qrels, rankings, "bm25"),
            "image_gain": image_gain_rows(qrels, rankings),
            "headroom": headroom_rows(qrels, {**rankings, **headroom}) if headroom else [],
            "photos": sum(bool(event.get("image")) for event in events)}


def held_out(catalog: Any, events: list[dict[str, Any]], share: float) -> tuple[Any, list[dict[str, Any]]]:
    """The products outside the first ``share`` of the hash order (:func:`acebert.pairs.in_share`).

    Why: a checkpoint trained with the image-title loss on that share (``image_title_share``) has seen
    those products' photos next to their full titles, colour words included, so on them the probe
    would partly measure recall of training pairs. The rest it has never seen that way.
    """
    from acebert.pairs import in_share

    kept = {str(pid) for pid in catalog["product_id"] if not in_share(str(pid), share)}
    return (catalog[catalog["product_id"].astype(str).isin(kept)].reset_index(drop=True),
            [event for event in events if str(event["product_id"]) in kept])


def markdown(payload: Mapping[str, Any]) -> str:
    from bench.relevance_markdown import breadth_note

    m = payload["machine"]
    lines = [
        "# The blind-title colour probe",
        "",
        f"Generated by `{payload['command']}` (commit {payload['commit']}, {payload['date']}) on {m['nproc']} cores "
        f"({m['cpu']}), {m['memory_gib']} GiB, {payload['engine']}.",
        "",
        *([f"Held-out products only (`--held-out-share {payload['held_out_share']:g}`): those outside the share of "
           "the hash order (`acebert.pairs.in_share`) that `image_title_share` trains image-title pairs on.", ""]
          if payload.get("held_out_share") is not None else []),
        f"{payload['blinded_titles']:,} of {payload['products']:,} titles lost their colour words (a fixed list of "
        f"{len(COLOURS)} generic English colour names in `bench/probe_colour.py`; images and categories unchanged). "
        f"{payload['colour_queries']} queries of `{payload['queries_file']}` name a colour. Hybrid is min-max with the "
        "BM25 weight stored with each model (`blend.json`, chosen on dev by `acebert.train` or `hybrid-search train`; "
        "0.5 without one), as a deployment of it serves. " + (
            "Exact search in process (`--exact`): BM25 is Okapi over title and category, kNN the exact cosine top "
            "100, the hybrid their min-max blend without the known-item rule; no index-build noise."
            if payload.get("exact") else f"kNN breadth: {breadth_note(payload['candidates'], payload['served'])}."),
        "",
        "| system | nDCG@10 | vs BM25 (95% CI) |",
        "|---|---:|---:|",
    ]
    blends = payload.get("blends", {})
    for row in payload["rows"]:
        weight = blends.get(row["system"])
        system = row["system"] if weight is None else f"{row['system']} (BM25 {weight:g})"
        lines.append(f"| {system} | {row['ndcg@10']:.3f} | {row['vs_baseline']:+.3f} "
                     f"({row['ci'][0]:+.3f} to {row['ci'][1]:+.3f}) |")
    if payload.get("photo_leg"):
        lines += ["", "`knn MODEL + photo leg W` (`--photo-leg`): the title + image model's dense leg min-max blended "
                  "with a second kNN leg over each photo's own vector (the product tower given the photo and the "
                  "category, no title), weights 1 − W and W, as two kNN legs of an engine would be; a product "
                  "without a photo is absent from that leg. W is chosen on the dev queries (`--queries "
                  "queries_dev.tsv`), not on these."]
    if payload.get("image_gain"):
        lines += ["", "What the image tokens add: dense title + image against dense title only, same checkpoint, "
                  "paired per query (issue #11 target: +20%).", "",
                  "| checkpoint | title only | title + image | gain (95% CI) | relative |", "|---|---:|---:|---:|---:|"]
        for row in payload["image_gain"]:
            lines.append(f"| {row['model']} | {row['title_only']:.3f} | {row['title_image']:.3f} | {row['gain']:+.3f} "
                         f"({row['ci'][0]:+.3f} to {row['ci'][1]:+.3f}) | {row['relative']:+.1%} |")
    if payload.get("headroom"):
        lines += ["", "How much a photo could add at most (`--headroom`): each title-only model on the same probe, with"
                  f" the colour words left in the titles of the {payload['photos']:,} products that have a photo "
                  "(what a title + image model would see if every photo told it exactly what those words said; "
                  "products without a photo stay blind) and in every title. The first gain is the ceiling for a "
                  "photo that is as good a colour source as the listing's own words, in the unit of the issue's "
                  "+20% target.", "",
                  "| checkpoint | blind titles | photos as colour words | titles intact | most a photo adds (95% CI) "
                  "| relative | title + image got | share of the most |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in payload["headroom"]:
            got = (f"{row['title_image']:.3f} | {row['share']:.0%}" if "title_image" in row else "– | –")
            lines.append(f"| {row['model']} | {row['blind']:.3f} | {row['photo_as_words']:.3f} | {row['intact']:.3f} | "
                         f"{row['most']:+.3f} ({row['ci'][0]:+.3f} to {row['ci'][1]:+.3f}) | {row['relative']:+.1%} "
                         f"| {got} |")
    if payload["models"] == ["minilm"]:
        lines += ["", "Only MiniLM (title only) ran here: the machine had no ACE-BERT checkpoint. The question this "
                  "probe exists for, whether the image tokens recover the colour, needs "
                  "`--models minilm,acebert-title:CKPT,acebert:CKPT`."]
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from bench.relevance import DATA, add_candidates_argument, parse_model, repeated
    from devstack.install import cache_root

    parser = argparse.ArgumentParser(prog="python -m bench.probe_colour", description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=DATA, help="directory with products.csv (and images)")
    parser.add_argument("--queries", type=Path, default=None, help="queries TSV (default: CATALOG/queries_test.tsv)")
    parser.add_argument("--qrels", type=Path, default=None, help="judgments TSV (default: CATALOG/qrels_test.tsv)")
    parser.add_argument("--models", default="minilm", help="comma-separated: minilm, acebert-title:CKPT, acebert:CKPT")
    parser.add_argument("--engine", default="opensearch", choices=("opensearch", "elasticsearch"))
    parser.add_argument("--reindex", action="store_true", help="rebuild the indices even when they are current")
    add_candidates_argument(parser)
    parser.add_argument("--exact", action="store_true",
                        help="no engine: exact search and BM25 in process, to compare checkpoints without index-build "
                             "noise (writes probe-colour-exact.json and docs/probe-colour-exact.md)")
    parser.add_argument("--held-out-share", type=float, default=None, metavar="S",
                        help="index and judge only the products outside share S of the hash order: those a checkpoint "
                             "trained with image_title_share = S never saw with their titles")
    parser.add_argument("--headroom", action="store_true",
                        help="with --exact: also score each title-only model with the colour words kept where a "
                             "product has a photo, and kept everywhere: the most a photo could add")
    parser.add_argument("--photo-leg", type=_weights, default=(), metavar="W[,W..]",
                        help="with --exact: also each title + image model's dense leg blended with a second kNN leg "
                             "over each photo's own vector, at each photo weight W (choose it on the dev queries)")
    parser.add_argument("--run-dir", type=Path, default=cache_root() / "bench-probes",
                        help="engine data and worker logs (kept between runs so indices can be reused)")
    parser.add_argument("--results", type=Path, default=None, help="output directory (default: docs/results, docs/)")
    args = parser.parse_args(argv)
    if args.headroom and not args.exact:
        parser.error("--headroom compares exact rankings (no index-build noise); add --exact")
    if args.photo_leg and not args.exact:
        parser.error("--photo-leg needs a second vector field in the engine; it runs with --exact only")
    try:
        args.models = [parse_model(item.strip()) for item in args.models.split(",") if item.strip()]
    except ValueError as error:
        parser.error(f"--models: {error}")
    twice = repeated([name for _, name in model_rows(args.models)])
    if twice:
        parser.error(f"--models: {', '.join(twice)} given twice: name each model and checkpoint directory once")
    args.queries = args.queries or args.catalog / "queries_test.tsv"
    args.qrels = args.qrels or args.catalog / "qrels_test.tsv"
    return args


def _weights(text: str) -> tuple[float, ...]:
    """``0.1,0.2`` as weights strictly between 0 and 1."""
    weights = tuple(float(part) for part in text.split(",") if part.strip())
    if not weights or not all(0 < weight < 1 for weight in weights):
        raise argparse.ArgumentTypeError(f"give weights between 0 and 1 (exclusive), comma-separated: {text!r}")
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import command_line, stamp, write_report

    args = parse_args(argv)
    payload = {**stamp(command_line("bench.probe_colour", argv)), **run(args)}
    name, doc = (EXACT_RESULTS_NAME, EXACT_MARKDOWN) if args.exact else (RESULTS_NAME, MARKDOWN)
    # another product set (held out), more rows per model (headroom) or another query set (e.g. the dev queries a
    # change is chosen on): each its own report, beside the plain test one rather than over it
    split = args.queries.stem.removeprefix("queries_")
    suffix = "".join(f"-{part}" for part, on in (("held-out", args.held_out_share is not None),
                                                 ("headroom", args.headroom), ("photo-leg", bool(args.photo_leg)),
                                                 (split, split != "test")) if on)
    paths = write_report(name + suffix, payload, markdown, doc.with_name(f"{doc.stem}{suffix}.md"), args.results)
    _log(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
