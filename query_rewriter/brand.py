"""Brand-safe fusion: a query that names a brand keeps that brand's products first.

Shoppers type a brand and a kind of product ("puma shoes", "lavie handbag"). A dense model trained
on descriptive queries, which name no brand, reads "puma shoes" as "shoes", and a blend that gives
it most of the weight fills the page with other brands' shoes. ``docs/probes.md`` measured that
case: on generated brand queries the trained ACE-BERT's dense leg and the blend at its stored BM25
weight fell far below BM25 alone. The brand is in the title, where BM25 sees it.

A query word names a brand when the catalogue uses it as one. A product is sold under the words of
its ``brand`` field when its event sends one ("Red Tape", "United Colors of Benetton"), else under its
title's first word: titles lead with the brand ("Puma Men Black Running Shoes"), while colours and kinds
sit inside them. So a word counts as a brand when at least ``BRAND_MIN_TITLES`` products of the BM25
leg are sold under it and they are at least a share ``BRAND_SHARE`` of the leg's products that hold it
(in their title or their brand). "red" in "red tape shoes" fails the share, since many red products
are not Red Tape's, and "tape" passes. The products sold under a brand word of the query then move
ahead of the rest, those sold under more of its brand words first, each group in blend order, so the
blend still ranks Puma's shoes first among Puma's products.

Both thresholds were set before anything was measured. This is a function of the query, the BM25
leg and the titles only, never of a query id or a judgment. On a catalogue whose titles do not
lead with a brand, or a query with no brand word, nothing changes.
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

from query_rewriter.blend import Blended, Leg
from query_rewriter.known_item import WORD, words

BRAND_SHARE = 0.8
BRAND_MIN_TITLES = 3


def first_word(title: str | None) -> str | None:
    """The title's first word, lower-cased, in the known-item rule's sense of a word."""
    match = WORD.search(title.lower()) if title else None
    return match.group() if match else None


def sold_under(title: str | None, brand: str | None) -> frozenset[str]:
    """The words a product is sold under: its brand field's when it has one with a word, else its title's first.

    Why the field first: a shop that sends brands knows them, including those of several words and titles
    that do not lead with them; the first title word is the guess for a catalogue that sends none.
    """
    named = words(brand) if brand else set()
    if named:
        return frozenset(named)
    first = first_word(title)
    return frozenset({first}) if first else frozenset()


def brand_words(query: str, bm25: Leg, titles: Mapping[str, str | None], brands: Mapping[str, str | None]
                ) -> frozenset[str]:
    """The words of ``query`` that the BM25 leg's products are sold under as a brand (see the module docstring).

    ``bm25`` is the leg with raw scores; ``titles`` and ``brands`` hold its products' titles and brand
    fields (a product may lack either).
    """
    leg = [(titles.get(product_id), brands.get(product_id)) for product_id, _ in bm25]
    sold = [sold_under(title, brand) for title, brand in leg]
    sold_by = Counter(word for under in sold for word in under)
    found = set()
    for word in words(query):
        leading = sold_by[word]
        # Fewer than BRAND_MIN_TITLES products sold under the word can never reach the share of as many holding
        # it: the common case, a descriptive query, stops here without reading every title's words.
        if leading < BRAND_MIN_TITLES:
            continue
        holding = sum(word in under or word in words(title or "") for under, (title, _) in zip(sold, leg))
        if leading >= BRAND_SHARE * holding:
            found.add(word)
    return frozenset(found)


def brand_first(fused: Sequence[Blended], found: frozenset[str], titles: Mapping[str, str | None],
                brands: Mapping[str, str | None]) -> list[Blended]:
    """``fused`` with the products sold under the ``found`` brand words first, those sold under more of them
    ahead (a product of "House of Pataudi" before one of "United Colors of Benetton" for "house of pataudi
    kurta"), each group in its order."""
    if not found:
        return list(fused)
    matched = {item.doc_id: len(found & sold_under(titles.get(item.doc_id), brands.get(item.doc_id)))
               for item in fused}
    return sorted(fused, key=lambda item: -matched[item.doc_id])
