"""Rebuild data/sample/: a small, seeded sample of the shared fashion catalogue for the demo and tests.

Usage: python scripts/make_sample.py [SOURCE_DIR] — the source defaults to ../shared/data/fashion.
Copied: products.csv rows and their photos, and the TRAIN split's queries and judgments of the
chosen products (``queries.tsv``, ``qrels.tsv``), so the demo can train on them. Never
attributes.csv, and never the dev or test splits: those stay unseen for evaluation.
"""
from __future__ import annotations

import csv
import random
import shutil
import sys
from pathlib import Path

WITH_IMAGE, WITHOUT_IMAGE, SEED = 400, 100, 20261125
TRAIN_QUERIES, TRAIN_QRELS = "queries_train.tsv", "qrels_train.tsv"  # the only judgments copied


def copy_train_judgments(source: Path, target: Path, product_ids: set[str]) -> tuple[int, int]:
    """Write the train split's judgments of ``product_ids`` and the queries they judge; returns (queries, rows)."""
    with open(source / TRAIN_QRELS, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        qrels = [row for row in reader if row["product_id"] in product_ids]
    judged = {row["query_id"] for row in qrels}
    with open(source / TRAIN_QUERIES, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        query_fields = list(reader.fieldnames or [])
        queries = [row for row in reader if row["query_id"] in judged]
    for name, fields, rows in (("queries.tsv", query_fields, queries), ("qrels.tsv", ["query_id", "product_id", "grade"], qrels)):
        with open(target / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return len(queries), len(qrels)


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data" / "fashion"
    target = root / "data" / "sample"
    with open(source / "products.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(SEED)
    chosen = rng.sample([r for r in rows if r["image"]], WITH_IMAGE)
    chosen += rng.sample([r for r in rows if not r["image"]], WITHOUT_IMAGE)
    chosen.sort(key=lambda r: int(r["product_id"]))
    shutil.rmtree(target / "images", ignore_errors=True)  # README.md (hand-written) stays
    (target / "images").mkdir(parents=True)
    with open(target / "products.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["product_id", "title", "category", "image"])
        writer.writeheader()
        writer.writerows(chosen)
    for row in chosen:
        if row["image"]:
            shutil.copyfile(source / row["image"], target / row["image"])
    queries, judgments = copy_train_judgments(source, target, {row["product_id"] for row in chosen})
    print(f"wrote {len(chosen)} products, {queries} train queries and {judgments} train judgments to {target}")


if __name__ == "__main__":
    main()
