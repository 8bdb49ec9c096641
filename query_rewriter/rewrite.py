"""Query normalisation and the one rewrite that reliably helps: price phrases become filters.

"red dress under 50" searches for "red dress" with ``price <= 50``. Left in the text, the
number would only add noise to BM25 and to the query vector. Everything else is left to the
analyzer (stemming, stop words) and to the model.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from es_mappings import MAX_PRICE

_PRICE = re.compile(
    r"\b(?P<op>under|below|less than|cheaper than|up to|over|above|more than)\s*"
    r"(?:\$|€|£|rs\.?\s*|inr\s*)?(?P<amount>\d+(?:[.,]\d+)?)\b",
    re.IGNORECASE,
)
_UPPER_OPS = {"under", "below", "less than", "cheaper than", "up to"}


@dataclass(frozen=True)
class RewrittenQuery:
    text: str
    price_min: float | None = None
    price_max: float | None = None


def normalize(query: str) -> str:
    """Unicode-normalise, lower-case and collapse whitespace; keep apostrophes ("men's")."""
    text = unicodedata.normalize("NFKC", query).lower()
    text = re.sub(r"[\u2018\u2019`]", "'", text)
    text = re.sub(r"[^\w\s'&$€£.,-]", " ", text)
    return " ".join(text.split())


def rewrite(query: str) -> RewrittenQuery:
    """Normalise ``query`` and lift price phrases out of the text into bounds."""
    text = normalize(query)
    price_min = price_max = None

    def lift(match: re.Match[str]) -> str:
        nonlocal price_min, price_max
        amount = float(match["amount"].replace(",", "."))
        if amount > MAX_PRICE:  # no price: a model number or a typo stays in the text
            return match[0]
        if match["op"].lower() in _UPPER_OPS:
            price_max = amount if price_max is None else min(price_max, amount)
        else:
            price_min = amount if price_min is None else max(price_min, amount)
        return " "

    stripped = " ".join(_PRICE.sub(lift, text).split())
    return RewrittenQuery(text=stripped or text, price_min=price_min, price_max=price_max)
