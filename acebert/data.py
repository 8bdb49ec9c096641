"""Reading the catalogue, queries and judgments from disk.

Shared by training, evaluation and the benchmarks, so every function takes explicit paths and
returns plain pandas/dict structures with string ids (what ranx expects). Nothing here reads
``attributes.csv``: those attributes are the answer key and must never reach a model; the
analysis that needs them lives in :mod:`acebert.slices`.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import pandas as pd

from acebert.encoder import ProductInput
from acebert.metrics import Qrels


class DataError(ValueError):
    """A data file that cannot be used; the message names the file, the line and what to fix."""


def read_rows(
    path: str | Path, required: Sequence[str], delimiter: str, optional: Sequence[str] = (),
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(line number, row)`` pairs of a CSV/TSV file, every value a stripped string.

    Fails with :class:`DataError` naming the missing columns, or the file and line of a row with
    the wrong number of fields, so a user can fix the file instead of guessing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            sep = "tab" if delimiter == "\t" else "comma"
            extra = f", optional {', '.join(optional)}" if optional else ""
            raise DataError(f"{path}: missing columns {missing}; the first line must name the columns, {sep}-separated: "
                            f"required {', '.join(required)}{extra}; found {', '.join(header) or 'none'}")
        rows = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank line
            if len(fields) != len(header):
                raise DataError(f"{path}:{reader.line_num}: {len(fields)} fields, expected {len(header)} "
                                f"({', '.join(header)})")
            rows.append((reader.line_num, {name: value.strip() for name, value in zip(header, fields)}))
    return header, rows


def require_value(path: str | Path, line: int, row: dict[str, str], column: str) -> str:
    """``row[column]``, refusing an empty value with the file and line."""
    value = row[column]
    if not value:
        raise DataError(f"{path}:{line}: empty {column}")
    return value


def load_catalog(directory: str | Path, products_file: str = "products.csv", check_images: bool = False) -> pd.DataFrame:
    """The catalogue as ``product_id, title, category, image`` (strings; ``image`` None if absent), and any
    other column of the file as it is (``brand``, read by :func:`indexer.catalog.catalog_events`).

    Image paths in the file are relative to ``directory``; they are returned absolute so callers
    do not need to know where the catalogue lives. Missing titles become ``""`` so a product with
    only an image is still encodable. An empty or repeated ``product_id`` fails with its line;
    ``check_images`` also refuses a row whose image file does not exist (training would fail on it
    minutes later).
    """
    directory = Path(directory).absolute()  # a relative --catalog must not make relative image paths
    path = directory / products_file
    if not path.is_file():
        raise DataError(f"catalogue not found: {path} (a CSV with columns product_id, title and optionally "
                        "category, brand, image)")
    header, rows = read_rows(path, ("product_id", "title"), ",", optional=("category", "brand", "image"))
    seen: dict[str, int] = {}
    for line, row in rows:
        product_id = require_value(path, line, row, "product_id")
        if product_id in seen:
            raise DataError(f"{path}:{line}: product_id {product_id!r} already on line {seen[product_id]}")
        seen[product_id] = line
        image = row.get("image", "")
        if check_images and image and not (directory / image).is_file():
            raise DataError(f"{path}:{line}: image {image!r} not found under {directory}; fix the path or leave "
                            "the image column empty for a title-only product")
    columns = list(dict.fromkeys(["product_id", "title", "category", *header]))
    frame = pd.DataFrame([row for _, row in rows], columns=columns, dtype=str).fillna("")
    # A text-only catalogue has no image column: every product is then title-only.
    images = [str(directory / rel) if rel else None for rel in frame["image"]] if "image" in header else [None] * len(frame)
    frame["image"] = pd.Series(images, index=frame.index, dtype=object)  # keeps None (not NaN)
    return frame


def load_queries(path: str | Path) -> pd.DataFrame:
    """Queries as ``query_id, query[, kind]`` strings, from a tab-separated file.

    An empty id or text, or an id given twice, fails with its line.
    """
    header, rows = read_rows(path, ("query_id", "query"), "\t")
    seen: dict[str, int] = {}
    for line, row in rows:
        query_id = require_value(path, line, row, "query_id")
        require_value(path, line, row, "query")
        if query_id in seen:
            raise DataError(f"{path}:{line}: query_id {query_id!r} already on line {seen[query_id]}")
        seen[query_id] = line
    return pd.DataFrame([row for _, row in rows], columns=header, dtype=str)


GRADES = ("0", "1", "2")


def load_qrels(path: str | Path) -> Qrels:
    """Graded judgments as ``{query_id: {product_id: grade}}`` from ``query_id, product_id, grade``.

    Grades are 0 (not relevant), 1 (right kind of product, a wrong attribute) or 2 (matches the
    whole query); anything else fails with its line.
    """
    _, rows = read_rows(path, ("query_id", "product_id", "grade"), "\t")
    qrels: Qrels = {}
    for line, row in rows:
        query_id = require_value(path, line, row, "query_id")
        product_id = require_value(path, line, row, "product_id")
        if row["grade"] not in GRADES:
            raise DataError(f"{path}:{line}: grade {row['grade']!r} is not 0, 1 or 2 (2: the product matches the "
                            "whole query, 1: right kind of product with a wrong attribute, 0: not relevant)")
        qrels.setdefault(query_id, {})[product_id] = int(row["grade"])
    return qrels


def catalog_inputs(catalog: pd.DataFrame) -> list[ProductInput]:
    """What the product tower sees for each catalogue row, in row order.

    A missing category (``""`` from :func:`load_catalog`, or no column in a frame built in memory)
    becomes None, so a ``use_category`` model reads the title alone, as the indexer's events give it.
    """
    categories = catalog["category"] if "category" in catalog else [""] * len(catalog)
    return [
        ProductInput(title=title, image=image, category=category or None)
        for title, image, category in zip(catalog["title"], catalog["image"], categories)
    ]
