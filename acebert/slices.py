"""Query slices for analysis, built from the catalogue's answer key (``attributes.csv``).

ANALYSIS ONLY. ``attributes.csv`` holds the attributes the judgments were derived from; it must
never reach a model or an index. Only evaluation and reporting import this module.

The colour slice is where the image has to carry the colour: a query is in it when

1. its ``kind`` contains ``colour`` (``colour`` or ``gender_colour``), and
2. its colour is the ``baseColour`` of its grade-2 products (grade 2 matches every attribute
   asked, so they all share one), lower-cased, e.g. ``navy blue``, and
3. strictly more than half of its grade-2 products have titles that do not contain that
   colour as a whole phrase (case-insensitive, word boundaries: ``red`` is not found in
   ``redwood``).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from acebert.metrics import Qrels


def load_colours(attributes_path: str | Path) -> dict[str, str]:
    """``{product_id: lower-cased baseColour}`` for products that have one."""
    frame = pd.read_csv(attributes_path, dtype=str, keep_default_na=False, usecols=["product_id", "baseColour"])
    return {pid: colour.lower() for pid, colour in zip(frame["product_id"], frame["baseColour"]) if colour}


def title_has_colour(title: str, colour: str) -> bool:
    """Whether ``colour`` appears in ``title`` as a whole phrase, ignoring case."""
    return re.search(rf"\b{re.escape(colour)}\b", title.lower()) is not None


def colour_slice(queries: pd.DataFrame, qrels: Qrels, titles: dict[str, str], colours: dict[str, str]) -> set[str]:
    """Ids of colour queries whose grade-2 products mostly lack the colour word in their titles.

    ``queries`` needs ``query_id`` and ``kind``; ``titles`` maps product id to title.
    """
    selected: set[str] = set()
    for qid, kind in zip(queries["query_id"], queries["kind"]):
        if "colour" not in kind:
            continue
        positives = [pid for pid, grade in qrels.get(qid, {}).items() if grade == 2 and pid in colours]
        if not positives:
            continue
        colour = Counter(colours[pid] for pid in positives).most_common(1)[0][0]
        lacking = sum(not title_has_colour(titles.get(pid, ""), colour) for pid in positives)
        if lacking * 2 > len(positives):
            selected.add(qid)
    return selected
