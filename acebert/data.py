"""Reading the catalogue, queries and judgments from disk.

Shared by training, evaluation and the benchmarks, so every function takes explicit paths and
returns plain pandas/dict structures with string ids (what ranx expects). Nothing here reads
``attributes.csv``: those attributes are the answer key and must never reach a model; the
analysis that needs them lives in :mod:`acebert.slices`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from acebert.encoder import ProductInput
from acebert.metrics import Qrels


def load_catalog(directory: str | Path, products_file: str = "products.csv") -> pd.DataFrame:
    """The catalogue as ``product_id, title, category, image`` (strings; ``image`` None if absent).

    Image paths in the file are relative to ``directory``; they are returned absolute so callers
    do not need to know where the catalogue lives. Missing titles become ``""`` so a product with
    only an image is still encodable.
    """
    directory = Path(directory)
    path = directory / products_file
    if not path.is_file():
        raise FileNotFoundError(f"catalogue not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"product_id", "title"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)} (product_id and title are required; "
                         "category and image are optional)")
    # A text-only catalogue has no image column: every product is then title-only.
    relative = frame["image"] if "image" in frame.columns else [""] * len(frame)
    images = [str(directory / rel) if rel else None for rel in relative]
    frame["image"] = pd.Series(images, index=frame.index, dtype=object)  # keeps None (not NaN)
    return frame


def load_queries(path: str | Path) -> pd.DataFrame:
    """Queries as ``query_id, query[, kind]`` strings, from a tab-separated file."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"query_id", "query"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return frame


def load_qrels(path: str | Path) -> Qrels:
    """Graded judgments as ``{query_id: {product_id: grade}}`` from ``query_id, product_id, grade``."""
    frame = pd.read_csv(path, sep="\t", dtype={"query_id": str, "product_id": str, "grade": int})
    qrels: Qrels = {}
    for qid, pid, grade in zip(frame["query_id"], frame["product_id"], frame["grade"]):
        qrels.setdefault(qid, {})[pid] = int(grade)
    return qrels


def catalog_inputs(catalog: pd.DataFrame) -> list[ProductInput]:
    """What the product tower sees for each catalogue row, in row order."""
    return [ProductInput(title=title, image=image) for title, image in zip(catalog["title"], catalog["image"])]
