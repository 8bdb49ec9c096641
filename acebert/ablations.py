"""Ablations: ``python -m acebert.ablations --config configs/acebert.toml [--reuse] [--seeds 13,14,15]``.

Trains each variant of the config with the same seed (``full`` is the config itself; the others
change a few of its settings, e.g. no image tokens or shared towers), evaluates every one and the MiniLM
baseline on dev and test (all queries and the colour slice, plus the modality gap and domain
classifier accuracy), writes ``ablations.json`` next to the checkpoints and a Markdown table into
the doc between ``<!-- ablations:start -->`` and ``<!-- ablations:end -->``.

``--variants`` runs a subset: the rows of the other variants are kept from the previous
``ablations.json`` (same checkpoints, same evaluation), so adding one variant does not mean
re-evaluating all of them.

``--seeds`` trains every chosen variant once per seed (the config's own seed keeps its
checkpoint directory; another seed adds ``-seed<N>``), and writes a second table between
``<!-- ablation-seeds:start -->`` and ``<!-- ablation-seeds:end -->``: mean and sample sd over
seeds, and a paired test against ``full`` over test queries (each query's nDCG@10 averaged over
the seeds first), because single-seed differences under about 0.01 are noise here. It leaves the doc as it
is when its table holds rows of variants this machine's ``ablation-seeds.json`` lacks, and says so.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from acebert.config import REPO_ROOT, RunConfig, load_config
from acebert.metrics import Qrels

# The default from the night of 2026-12-06 to 2026-12-08: 4 epochs, the image-title alignment at 0.3. The variants
# measured against it pin it, so that each still trains what its rows in docs/acebert.md report.
EPOCHS_4 = ["train.epochs=4", "train.image_title_weight=0.3"]
# The default of the afternoon of 2026-12-06: the 12 patch and 8 pixel-row tokens beside the colour token, 2 epochs.
# The variants measured against it (or against a default before it) start from it, so that each still trains what
# its rows in docs/acebert.md report.
RAW_IMAGE_TOKENS = ["model.raw_image_tokens=true", "train.epochs=2", "train.image_title_weight=0.3"]
# The default until 2026-12-06 (no colour token, no image-title alignment, heads at 5e-4).
PIXELS_ONLY = [*RAW_IMAGE_TOKENS, "model.colour_bins=0", "train.image_title_weight=0.0", "train.image_title_share=1.0",
               "train.head_lr=5e-4"]
VARIANTS: dict[str, list[str]] = {
    "full": [],
    "raw_image_tokens": RAW_IMAGE_TOKENS,
    # the same trained a third epoch, at 1.5x its time: which of the default's two changes of the evening of
    # 2026-12-06, the single image token or the third epoch, carries its gain
    "raw_image_tokens_3_epochs": ["model.raw_image_tokens=true", "train.epochs=3", "train.image_title_weight=0.3"],
    # the default of the morning of 2026-12-06: 4 x 4 x 4 colour cells; 8 x 8 x 8 tell finer shades apart
    "colour_4": [*RAW_IMAGE_TOKENS, "model.colour_bins=4"],
    "pixels_only": PIXELS_ONLY,
    # the title alone: no image tokens, so nothing for the alignment to train
    "no_image": ["model.use_image=false", "model.colour_bins=0", "train.image_title_weight=0.0"],
    "adversarial": ["train.adversarial=true"],
    "shared_towers": ["model.shared_towers=true"],
    "bm25_negatives": ["train.hard_negatives=1", 'train.hard_negative_source="bm25"'],
    # no grade-1 hard negatives (right type, wrong colour, gender or usage): the default before they won
    "no_hard_negatives": ["train.hard_negatives=0"],
    # grade 1 a plain negative: the default before the graded loss won (2026-12-01, issue #11)
    "ungraded": ["train.grade1_weight=0.0", "train.hard_negatives=0"],
    "title_dropout": ["train.title_word_dropout=0.3", "train.title_dropout=0.2"],
    "no_category": ["model.use_category=false"],  # the default before 2026-12-01
    # one more image token, a histogram of the photo's foreground colours (4 x 4 x 4 RGB cells)
    "colour_token": [*PIXELS_ONLY, "model.colour_bins=4"],
    # the same with title words dropped in training, so that the colour token must stand in for a lost colour word
    "colour_token_word_dropout": [*PIXELS_ONLY, "model.colour_bins=4", "train.title_word_dropout=0.3"],
    # the same token learning 10x faster: at head_lr 5e-4 the image projections move ~3% of their size in an epoch
    "colour_token_fast": [*PIXELS_ONLY, "model.colour_bins=4", "train.head_lr=5e-3"],
    # image-title alignment on half the products (the other half held out for the blind-title probe)
    "image_title": [*PIXELS_ONLY, "train.image_title_weight=1.0", "train.image_title_share=0.5"],
    # the same with the image modules learning 10x faster, now that a loss asks them for what the title says
    "image_title_fast": [*PIXELS_ONLY, "train.image_title_weight=1.0", "train.image_title_share=0.5",
                         "train.head_lr=5e-3"],
    # the fast one at a third of the weight: both cost about 0.01 dev nDCG@10 at weight 1 (seed 13)
    "image_title_fast_0.3": [*PIXELS_ONLY, "train.image_title_weight=0.3", "train.image_title_share=0.5",
                             "train.head_lr=5e-3"],
    # alignment at full weight in the first epoch only: the second tunes for the queries alone
    "image_title_first_epoch": [*PIXELS_ONLY, "train.image_title_weight=1.0", "train.image_title_share=0.5",
                                "train.head_lr=5e-3", "train.image_title_epochs=1"],
    # colour_4 with the alignment at full weight: weight 1 doubled the raw pixels' gain but cost 0.01 dev nDCG@10
    # (seed 13)
    "colour_token_image_title_1": [*RAW_IMAGE_TOKENS, "model.colour_bins=4", "train.image_title_weight=1.0"],
    # the alignment on every product with a photo, as a deployment would train it (the default's half keeps the
    # other half unseen, for the blind-title probe's held-out score)
    "image_title_share_1": [*RAW_IMAGE_TOKENS, "train.image_title_share=1.0"],
    # the default's photo as its colour token alone, trained the 2 epochs the raw tokens were
    "colour_only": ["train.epochs=2", "train.image_title_weight=0.3"],
    # the default of the evening of 2026-12-06, one epoch fewer than now
    "epochs_3": ["train.epochs=3", "train.image_title_weight=0.3"],
    # the alignment at half weight instead of 0.3: the fourth epoch won judged dev but cut the photo's blind-title gain
    # (seed 13: +11.4% on the whole catalogue against +18.2% at 3 epochs); does more alignment give it back?
    "image_title_0.5": [*EPOCHS_4, "train.image_title_weight=0.5"],
    # the default from the night of 2026-12-06 to 2026-12-08, which the alignment at 0.5 and a fifth epoch replaced
    "epochs_4": EPOCHS_4,
    # the product tower on the backbone's first 3 of 6 layers (the query tower keeps all 6): about twice the
    # products/s on a CPU (issue #14's 2.5x plain SentenceTransformer); what does it cost in relevance?
    "product_layers_3": [*EPOCHS_4, "model.product_layers=3"],
    # catalogue title spans matched to their products at 0.3: the trained towers forget the brands the base model
    # read (a brand-kind probe: dense nDCG@10 0.29 against MiniLM's 0.88); does matching title words keep them?
    "title_span_0.3": [*EPOCHS_4, "train.title_span_weight=0.3"],
    # the same at a third of the weight: 0.3 kept the brands (0.29 -> 0.79) but cost 0.009 judged test nDCG@10 over 3
    # seeds; does a smaller share keep most of the one for less of the other?
    "title_span_0.1": [*EPOCHS_4, "train.title_span_weight=0.1"],
    "lambda_0.3": ["train.adversarial=true", "train.lambda_max=0.3"],
    "lambda_0.1": ["train.adversarial=true", "train.lambda_max=0.1"],
}
START, END = "<!-- ablations:start -->", "<!-- ablations:end -->"
SEEDS_START, SEEDS_END = "<!-- ablation-seeds:start -->", "<!-- ablation-seeds:end -->"
METRIC_COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def variant_config(config: Path, name: str, seed: int | None = None) -> RunConfig:
    """The run config of one variant and seed; every variant but ``full``, and every seed but the
    config's own, gets its own output directory."""
    base = load_config(config)
    overrides = list(VARIANTS[name])
    suffix = "" if name == "full" else f"-{name}"
    if seed is not None and seed != base.train.seed:
        overrides.append(f"train.seed={seed}")
        suffix += f"-seed{seed}"
    if suffix:
        overrides.append(f"train.output_dir={json.dumps(str(base.train.output_path) + suffix)}")
    return load_config(config, overrides)


def _trained(run: RunConfig) -> dict[str, Any] | None:
    """The finished checkpoint's config.json, or None if the run is missing or incomplete.

    A checkpoint trained with other settings (a default changed since) is refused, not reused.
    """
    from acebert.train import check_same_run

    path = run.train.output_path / "config.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    check_same_run({"model": saved["model"], "train": saved["train"]}, run.model_dump(mode="json"))
    return saved if saved.get("epoch") == run.train.epochs else None


def report_is_current(report: dict[str, Any], run: RunConfig) -> bool:
    """Whether a cached report scores the checkpoint that ``run`` trains: its directory, finished with
    ``run``'s settings (:func:`_trained` refuses other settings), and the same weights.

    A report is kept under its variant's name, and a variant's meaning moves when the default does
    (``full`` above all): without this check a renamed or retrained checkpoint would keep an old score.
    """
    from acebert.checkpoint_layout import weights_version

    if report.get("checkpoint") != str(run.train.output_path) or _trained(run) is None:
        return False
    return report.get("model_version") == weights_version(run.train.output_path)


def run_variant(
    config: Path,
    name: str,
    reuse: bool,
    splits: dict[str, tuple[pd.DataFrame, Qrels]],
    colours: dict[str, str],
    catalog: pd.DataFrame,
    seed: int | None = None,
) -> dict[str, Any]:
    """Train (unless a finished checkpoint is reused) and evaluate one variant at one seed."""
    from acebert.checkpoint import load_checkpoint_encoder
    from acebert.evaluate import evaluate_encoder
    from acebert.train import train

    run = variant_config(config, name, seed)
    saved = _trained(run) if reuse else None
    if saved is None:
        train(run, resume=reuse)
        saved = _trained(run)
    if saved is None:
        raise RuntimeError(f"training {name} did not finish all {run.train.epochs} epochs in {run.train.output_path}")
    encoder = load_checkpoint_encoder(run.train.output_path)
    report = evaluate_encoder(encoder, catalog, splits, colours)
    report["train_seconds"] = sum(epoch["train"]["seconds"] for epoch in saved["history"])
    report["checkpoint"] = str(run.train.output_path)
    return report


def markdown_table(results: dict[str, dict[str, Any]], split_names: Sequence[str]) -> str:
    """One row per (variant, split): all-query metrics, colour-slice metrics, gap, domain accuracy."""
    header = (
        "| variant | split | nDCG@10 | R@10 | R@100 | MRR@10 | colour slice nDCG@10 | colour slice R@10 "
        "| modality gap | domain acc | train s |"
    )
    lines = [header, "|" + "|".join(["---"] * (header.count("|") - 1)) + "|"]
    for variant, report in results.items():
        for split in split_names:
            part = report[split]
            colour = part.get("colour_slice", {})
            cells = [variant, f"{split} ({part['queries']} q, {colour.get('queries', 0)} colour)"]
            cells += [f"{part['all'][m]:.4f}" for m in METRIC_COLUMNS]
            cells += [f"{colour[m]:.4f}" if m in colour else "-" for m in ("ndcg@10", "recall@10")]
            cells.append(f"{part['modality_gap']:.3f}")
            cells.append(f"{part['domain_accuracy']:.3f}" if "domain_accuracy" in part else "-")
            cells.append(f"{report['train_seconds']:.0f}" if "train_seconds" in report else "-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_sd(values: Sequence[float]) -> str:
    """``mean ± sample sd`` (just the mean for one value)."""
    if len(values) < 2:
        return f"{statistics.mean(values):.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def seed_mean_per_query(reports: Sequence[dict[str, Any]], split: str) -> dict[str, float]:
    """Each query's nDCG@10 averaged over the seeds' reports."""
    queries = sorted(reports[0][split]["per_query_ndcg@10"])
    return {q: sum(r[split]["per_query_ndcg@10"][q] for r in reports) / len(reports) for q in queries}


def seeds_table(by_seed: dict[str, dict[str, dict[str, Any]]], split: str = "test", reference: str = "full") -> str:
    """Mean ± sd over seeds per variant, and the paired test of each variant against ``reference``."""
    from acebert.metrics import bootstrap_ci, permutation_p_value

    header = (f"| variant | seeds | {split} nDCG@10 | {split} colour slice nDCG@10 | dev nDCG@10 | modality gap "
              f"({split}) | Δ {split} nDCG@10 vs {reference} [95% CI] | p (randomization) |")
    lines = [header, "|" + "|".join(["---"] * (header.count("|") - 1)) + "|"]
    base = seed_mean_per_query(list(by_seed[reference].values()), split) if reference in by_seed else None
    for variant, runs in by_seed.items():
        reports = [runs[seed] for seed in sorted(runs, key=int)]
        cells = [variant, ", ".join(sorted(runs, key=int)),
                 _mean_sd([r[split]["all"]["ndcg@10"] for r in reports]),
                 _mean_sd([r[split]["colour_slice"]["ndcg@10"] for r in reports if "ndcg@10" in r[split].get("colour_slice", {})] or [float("nan")]),
                 _mean_sd([r["dev"]["all"]["ndcg@10"] for r in reports]) if all("dev" in r for r in reports) else "-",
                 _mean_sd([r[split]["modality_gap"] for r in reports])]
        if base is None or variant == reference:
            cells += ["-", "-"]
        else:
            mine = seed_mean_per_query(reports, split)
            deltas = [mine[q] - base[q] for q in base]
            low, high = bootstrap_ci(deltas)
            cells += [f"{sum(deltas) / len(deltas):+.4f} [{low:+.4f}, {high:+.4f}]", f"{permutation_p_value(deltas):.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_into_doc(doc: Path, table: str, start: str = START, end: str = END, heading: str = "Ablations") -> None:
    """Replace the text between the markers (appending a section if the doc has none)."""
    text = doc.read_text() if doc.is_file() else ""
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n{block}\n"
    doc.write_text(text)


def rows_it_would_drop(doc: Path, variants: Sequence[str], start: str = SEEDS_START, end: str = SEEDS_END
                       ) -> list[str]:
    """The variants of the doc's table between the markers (the first cell of each body row) not in ``variants``.

    Why: ``ablation-seeds.json`` lives beside the checkpoints, so a fresh machine holds only the variants it
    trained; rewriting the doc's table from it would silently drop the rows other machines measured.
    """
    text = doc.read_text() if doc.is_file() else ""
    if start not in text or end not in text:
        return []
    rows = text.split(start, 1)[1].split(end, 1)[0].strip().splitlines()[2:]  # past the header and its rule
    named = [row.split("|")[1].strip() for row in rows if row.startswith("|")]
    return [name for name in named if name not in variants]


def previous_results(path: Path, rerun: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The variant rows of an earlier run that this run does not redo (empty if there is none)."""
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return {name: report for name, report in saved.items() if name in VARIANTS and name not in rerun}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acebert.ablations", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs/acebert.toml")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--splits", default="dev,test", help="query splits to evaluate on")
    parser.add_argument("--reuse", action="store_true", help="reuse finished checkpoints, resume unfinished ones")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds: train each variant per seed and write the seed table")
    parser.add_argument("--doc", type=Path, default=REPO_ROOT / "docs/acebert.md")
    args = parser.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {list(VARIANTS)}")
    import torch

    from acebert.data import load_catalog, load_qrels, load_queries
    from acebert.evaluate import evaluate_encoder
    from acebert.minilm import MiniLMEncoder
    from acebert.slices import load_colours

    base = load_config(args.config)
    torch.set_num_threads(base.train.threads)
    data = base.train.data_path
    catalog = load_catalog(data)
    colours = load_colours(data / "attributes.csv")
    split_names = [s for s in args.splits.split(",") if s]
    splits = {s: (load_queries(data / f"queries_{s}.tsv"), load_qrels(data / f"qrels_{s}.tsv")) for s in split_names}

    if args.seeds:
        return run_seeds(args, names, [int(seed) for seed in args.seeds.split(",") if seed], splits, colours, catalog)
    out = base.train.output_path.parent / "ablations.json"
    results = previous_results(out, names)
    results["minilm"] = evaluate_encoder(MiniLMEncoder(), catalog, splits, colours)
    for name in names:
        results[name] = run_variant(args.config, name, args.reuse, splits, colours, catalog)
        out.write_text(json.dumps(results, indent=2) + "\n")
    results = {key: results[key] for key in ["minilm", *VARIANTS] if key in results}  # table order
    write_into_doc(args.doc, markdown_table(results, split_names))
    print(markdown_table(results, split_names))
    return 0


def run_seeds(args: argparse.Namespace, names: Sequence[str], seeds: Sequence[int],
              splits: dict[str, tuple[pd.DataFrame, Qrels]], colours: dict[str, str], catalog: pd.DataFrame) -> int:
    """Every variant at every seed (kept in ``ablation-seeds.json``, so a rerun adds only what is missing)."""
    if "test" not in splits:
        raise SystemExit("--seeds reports on the test split: include it in --splits")
    out = load_config(args.config).train.output_path.parent / "ablation-seeds.json"
    by_seed: dict[str, dict[str, dict[str, Any]]] = json.loads(out.read_text()) if out.is_file() else {}
    for name in names:
        for seed in seeds:
            cached = by_seed.get(name, {}).get(str(seed))
            if args.reuse and cached is not None and report_is_current(cached, variant_config(args.config, name, seed)):
                continue
            report = run_variant(args.config, name, args.reuse, splits, colours, catalog, seed)
            by_seed.setdefault(name, {})[str(seed)] = report
            out.write_text(json.dumps(by_seed, indent=2) + "\n")
    ordered = {key: by_seed[key] for key in VARIANTS if key in by_seed}
    table = seeds_table(ordered)
    dropped = rows_it_would_drop(args.doc, list(ordered))
    if dropped:
        print(f"{args.doc} left as it is: its seed table has rows for {dropped}, which {out} lacks (trained on "
              "another machine). Pass --doc PATH to write this table elsewhere and merge the rows by hand, or "
              "rerun those variants here.", file=sys.stderr)
    else:
        write_into_doc(args.doc, table, SEEDS_START, SEEDS_END, "Ablations over seeds")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
