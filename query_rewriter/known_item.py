"""Identifier-safe fusion: a product that BM25 singles out by every word of the query stays first.

A shopper who types a brand and a model or line name ("Gel Pulse III", "Puma 244") means one
product. BM25 finds it (its rare words score high), but a dense model reads "Puma 244" as "some
Puma product", and a blend that averages the two legs can push the exact product down the page.
``docs/probes.md`` measured that case: the blend lost MRR@10 against BM25 alone.

The rule is deliberately narrow, so that descriptive queries ("red dress for women"), where many
titles hold every word and the dense leg knows better, are left to the blend:

- BM25's top product holds every word of the query in its title (of several tied at the top
  score, the one that does), and
- BM25 singles it out: it is the only product of the BM25 leg whose title holds every word, or
  BM25 scores it at least ``margin`` times its second product (the words that matched are rare,
  as identifiers are).

Then that product moves to the top of the blend; nothing else changes order. The margin alone
missed known items whose second product shares a common query word ("Puma South Africa" next to
an Adidas "South Africa" jersey scores within 1.25x), which ``docs/probes.md`` lists. The words are the
same ``[a-z0-9]+`` runs the identifier probe uses, lower-cased, so "Gel-Pulse" matches
"gel pulse". This is a function of the query, the BM25 leg and its titles only, never of a
query id or a judgment.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from query_rewriter.blend import Blended, Leg

KNOWN_ITEM_MARGIN = 1.25
"""BM25 top-1 over top-2 score ratio above which the top product counts as singled out (chosen
before measuring; ``docs/probes.md`` shows how often the rule fires on each query set)."""
WORD = re.compile(r"[a-z0-9]+")
"""A word of a query or title, matched lower-cased: the identifier probe's runs of letters and digits."""


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def known_item(
    query: str, bm25: Leg, titles: Mapping[str, str | None], margin: float = KNOWN_ITEM_MARGIN
) -> str | None:
    """The product id BM25 singles out for ``query`` by every word, else None.

    ``bm25`` is the leg in rank order with raw scores; ``titles`` the titles of its products (a
    product without one counts as not holding the query's words).
    """
    query_words = words(query)
    if not bm25 or not query_words:
        return None
    top_score = bm25[0][1]

    def holds_every_word(product_id: str) -> bool:
        title = titles.get(product_id)
        return title is not None and query_words <= words(title)

    # Products tied at the top score are in the engine's document order, which says nothing about
    # them (a query whose rare words are stop words, "Flying This That", leaves only "fly", which
    # scores many titles the same): BM25's top is whichever of them holds every word, if one does.
    top = [product_id for product_id, score in bm25 if score == top_score and holds_every_word(product_id)]
    if len(top) != 1:
        return None
    top_id = top[0]
    if len(bm25) == 1 or top_score >= margin * bm25[1][1]:
        return top_id
    # within the margin: singled out only if no other product of the leg holds every word
    return None if any(holds_every_word(product_id) for product_id, _ in bm25 if product_id != top_id) else top_id


def promote(fused: Sequence[Blended], product_id: str | None) -> list[Blended]:
    """``fused`` with ``product_id`` moved to the front (unchanged when it is None or absent)."""
    if product_id is None:
        return list(fused)
    chosen = [item for item in fused if item.doc_id == product_id]
    return chosen + [item for item in fused if item.doc_id != product_id]
