"""Rebuild data/sample/: a small, seeded sample of the shared fashion catalogue for the demo and tests.

Usage: python scripts/make_sample.py [SOURCE_DIR] — the source defaults to ../shared/data/fashion.
Only products.csv rows and their photos are copied (never attributes.csv or judgments).
"""
from __future__ import annotations

import csv
import random
import shutil
import sys
from pathlib import Path

WITH_IMAGE, WITHOUT_IMAGE, SEED = 400, 100, 20261125


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
    if target.exists():
        shutil.rmtree(target)
    (target / "images").mkdir(parents=True)
    with open(target / "products.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["product_id", "title", "category", "image"])
        writer.writeheader()
        writer.writerows(chosen)
    for row in chosen:
        if row["image"]:
            shutil.copyfile(source / row["image"], target / row["image"])
    print(f"wrote {len(chosen)} products to {target}")


if __name__ == "__main__":
    main()
