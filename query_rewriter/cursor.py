"""Cursors: a result list frozen on its first page, so the next pages neither repeat nor skip.

Why a stored list: every page of a plain search is blended again from the engine's current
contents, so a product updated between page 1 and page 2 can move across the page boundary and
be shown twice, or never. A cursor keeps the ranked ids (with their per-leg explanation) of its
first search in Redis for :data:`CURSOR_TTL_S`; its pages are cut from that list, and only the
products' fields are read again (a product deleted since is left out and counted). When a caller
pages past the stored window, the search runs again one tier deeper and only the products the
list does not hold yet are appended (:func:`query_rewriter.blend.blend_tiers`).

A cursor string is ``<token>:<offset>``: the token names the stored list (128 random bits, so it
cannot be guessed), the offset is where the next page starts. Passing the same cursor twice gives
the same page.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import redis

from query_rewriter.blend import Blended
from query_rewriter.facets import FacetValue, Facets

CURSOR_TTL_S = 600


@dataclass
class CursorState:
    """What a cursor's pages are cut from."""

    request: dict[str, Any]          # the search that made it (query, filters, mode, ...)
    index: str                       # the concrete index it ranked, whose fields pages read
    depth: int                       # the deepest window blended so far
    first_depth: int                 # the first window (tier 1)
    more: bool                       # a leg filled its window: a deeper one may add products
    entries: list[Blended] = field(default_factory=list)
    facets: Facets = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**asdict(self),
                           "entries": [[e.doc_id, e.score, e.raw, e.normalized, e.ranks] for e in self.entries],
                           "facets": {name: [asdict(v) for v in values] for name, values in self.facets.items()}})

    @classmethod
    def from_json(cls, text: str | bytes) -> CursorState:
        data = json.loads(text)
        data["entries"] = [Blended(*entry) for entry in data["entries"]]
        data["facets"] = {name: [FacetValue(**v) for v in values] for name, values in data["facets"].items()}
        return cls(**data)


def parse_cursor(cursor: str) -> tuple[str, int]:
    """``(token, offset)`` of a cursor string; ValueError that says what to do when malformed."""
    token, _, offset = cursor.partition(":")
    if not token or not offset.isdigit() or len(cursor) > 100:
        raise ValueError("malformed cursor: pass back the next_cursor of the previous page unchanged")
    return token, int(offset)


def format_cursor(token: str, offset: int) -> str:
    return f"{token}:{offset}"


class CursorStore(Protocol):
    def create(self, state: CursorState) -> str: ...

    def get(self, token: str) -> CursorState | None: ...

    def update(self, token: str, change: Callable[[CursorState], CursorState]) -> CursorState | None: ...


class RedisCursorStore:
    """Cursor states under ``<prefix>:cursor:<token>``, expiring :data:`CURSOR_TTL_S` after last use."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self.prefix}:cursor:{token}"

    def create(self, state: CursorState) -> str:
        token = secrets.token_urlsafe(16)
        self.redis.set(self._key(token), state.to_json(), ex=CURSOR_TTL_S)
        return token

    def get(self, token: str) -> CursorState | None:
        key = self._key(token)
        with self.redis.pipeline() as pipe:
            pipe.get(key)
            pipe.expire(key, CURSOR_TTL_S)
            text, _ = pipe.execute()
        return CursorState.from_json(text) if text is not None else None

    def update(self, token: str, change: Callable[[CursorState], CursorState]) -> CursorState | None:
        """Apply ``change`` atomically: two pages extending the same list at once cannot both append."""
        key = self._key(token)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    text = pipe.get(key)
                    if text is None:
                        return None
                    state = change(CursorState.from_json(text))
                    pipe.multi()
                    pipe.set(key, state.to_json(), ex=CURSOR_TTL_S)
                    pipe.execute()
                    return state
                except redis.WatchError:
                    continue
