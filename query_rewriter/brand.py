"""Brand-safe fusion: a query that names a brand keeps that brand's products first.

Shoppers type a brand and a kind of product ("puma shoes", "lavie handbag"). A dense model trained
on descriptive queries, which name no brand, reads "puma shoes" as "shoes", and a blend that gives
it most of the weight fills the page with other brands' shoes. ``docs/probes.md`` measured that
case: on generated brand queries the trained ACE-BERT's dense leg and the blend at its stored BM25
weight fell far below BM25 alone. The brand is in the title, where BM25 sees it.

A query word names a brand when the catalogue uses it as one. Product titles lead with the brand
("Puma Men Black Running Shoes"), while colours and kinds sit inside them. So a word counts as a
brand when at least ``BRAND_MIN_TITLES`` titles of the BM25 leg hold it and at least a share
``BRAND_SHARE`` of those titles begin with it. The products whose titles begin with a brand word
of the query then move ahead of the rest, each group in blend order, so the blend still ranks
Puma's shoes first among Puma's products.

Both thresholds were set before anything was measured. This is a function of the query, the BM25
leg and the titles only, never of a query id or a judgment. On a catalogue whose titles do not
lead with a brand, or a query with no brand word, nothing changes.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from query_rewriter.blend import Blended, Leg
from query_rewriter.known_item import WORD, words

BRAND_SHARE = 0.8
BRAND_MIN_TITLES = 3


def first_word(title: str | None) -> str | None:
    """The title's first word, lower-cased, in the known-item rule's sense of a word."""
    match = WORD.search(title.lower()) if title else None
    return match.group() if match else None


def brand_words(query: str, bm25: Leg, titles: Mapping[str, str | None]) -> frozenset[str]:
    """The words of ``query`` that the BM25 leg's titles use as a brand (see the module docstring).

    ``bm25`` is the leg with raw scores; ``titles`` holds the titles of its products (a product
    without one is left out of the count).
    """
    leg_titles = [title for title in (titles.get(product_id) for product_id, _ in bm25) if title]
    firsts = [first_word(title) for title in leg_titles]
    brands = set()
    for word in words(query):
        leading = firsts.count(word)
        # Fewer than BRAND_MIN_TITLES leading titles can never reach the share of as many holding ones: the
        # common case, a descriptive query, stops here without reading every title's words.
        if leading < BRAND_MIN_TITLES:
            continue
        holding = sum(word in words(title) for title in leg_titles)
        if leading >= BRAND_SHARE * holding:
            brands.add(word)
    return frozenset(brands)


def brand_first(fused: Sequence[Blended], brands: frozenset[str], titles: Mapping[str, str | None]
                ) -> list[Blended]:
    """``fused`` with the products whose titles begin with one of ``brands`` first, each part in its order."""
    if not brands:
        return list(fused)
    named = [item for item in fused if first_word(titles.get(item.doc_id)) in brands]
    chosen = {item.doc_id for item in named}
    return named + [item for item in fused if item.doc_id not in chosen]
