"""Build the adapter named by a validated engine kind."""
from __future__ import annotations

from typing import Callable

from engines.base import SearchEngine


def _opensearch(url: str) -> SearchEngine:
    from engines.opensearch import OpenSearchEngine

    return OpenSearchEngine(url)


def _elasticsearch(url: str) -> SearchEngine:
    from engines.elasticsearch import ElasticsearchEngine

    return ElasticsearchEngine(url)


ENGINE_KINDS: dict[str, Callable[[str], SearchEngine]] = {
    "opensearch": _opensearch,
    "elasticsearch": _elasticsearch,
}


def connect(kind: str, url: str) -> SearchEngine:
    """The adapter for ``kind`` (``opensearch`` or ``elasticsearch``) talking to ``url``."""
    try:
        factory = ENGINE_KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown engine {kind!r}; expected one of: {', '.join(sorted(ENGINE_KINDS))}"
        ) from None
    return factory(url)
