"""Ablations: ``python -m acebert.ablations --config configs/acebert.toml [--reuse] [--doc docs/acebert.md]``.

Trains each variant of the config with the same seed (full model, no image tokens, no
adversarial loss, shared towers, BM25 hard negatives), evaluates every one and the MiniLM
baseline on dev and test (all queries and the colour slice, plus the modality gap and domain
classifier accuracy), writes ``ablations.json`` next to the checkpoints and a Markdown table into
the doc between ``<!-- ablations:start -->`` and ``<!-- ablations:end -->``.

``--variants`` runs a subset: the rows of the other variants are kept from the previous
``ablations.json`` (same checkpoints, same evaluation), so adding one variant does not mean
re-evaluating all of them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from acebert.config import REPO_ROOT, RunConfig, load_config
from acebert.metrics import Qrels

VARIANTS: dict[str, list[str]] = {
    "full": [],
    "no_image": ["model.use_image=false"],
    "no_adversarial": ["train.adversarial=false"],
    "shared_towers": ["model.shared_towers=true"],
    "bm25_negatives": ["train.hard_negatives=1", 'train.hard_negative_source="bm25"'],
}
START, END = "<!-- ablations:start -->", "<!-- ablations:end -->"
METRIC_COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def variant_config(config: Path, name: str) -> RunConfig:
    """The run config of one variant; every variant but ``full`` gets its own output directory."""
    base = load_config(config)
    overrides = list(VARIANTS[name])
    if name != "full":
        overrides.append(f"train.output_dir={json.dumps(str(base.train.output_path) + '-' + name)}")
    return load_config(config, overrides)


def _trained(run: RunConfig) -> dict[str, Any] | None:
    """The finished checkpoint's config.json, or None if the run is missing or incomplete."""
    path = run.train.output_path / "config.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved if saved.get("epoch") == run.train.epochs else None


def run_variant(
    config: Path,
    name: str,
    reuse: bool,
    splits: dict[str, tuple[pd.DataFrame, Qrels]],
    colours: dict[str, str],
    catalog: pd.DataFrame,
) -> dict[str, Any]:
    """Train (unless a finished checkpoint is reused) and evaluate one variant."""
    from acebert.checkpoint import load_checkpoint_encoder
    from acebert.evaluate import evaluate_encoder
    from acebert.train import train

    run = variant_config(config, name)
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


def write_into_doc(doc: Path, table: str) -> None:
    """Replace the text between the markers (appending a section if the doc has none)."""
    text = doc.read_text() if doc.is_file() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Ablations\n\n{block}\n"
    doc.write_text(text)


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


if __name__ == "__main__":
    sys.exit(main())
