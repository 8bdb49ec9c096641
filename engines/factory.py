"""The engine kinds, and the adapter for each."""
from __future__ import annotations

from typing import Callable, Literal, get_args

from engines.base import SearchEngine

EngineKind = Literal["opensearch", "elasticsearch"]
ENGINE_KINDS: tuple[EngineKind, ...] = get_args(EngineKind)


def _opensearch(url: str) -> SearchEngine:
    from engines.opensearch import OpenSearchEngine

    return OpenSearchEngine(url)


def _elasticsearch(url: str) -> SearchEngine:
    from engines.elasticsearch import ElasticsearchEngine

    return ElasticsearchEngine(url)


# Imported on first use: a process talking to one engine never loads the other's client library.
_FACTORIES: dict[str, Callable[[str], SearchEngine]] = {
    "opensearch": _opensearch,
    "elasticsearch": _elasticsearch,
}


def connect(kind: str, url: str) -> SearchEngine:
    """The adapter for ``kind`` (one of :data:`ENGINE_KINDS`) talking to ``url``."""
    try:
        factory = _FACTORIES[kind]
    except KeyError:
        raise ValueError(f"unknown engine {kind!r}; expected one of: {', '.join(ENGINE_KINDS)}") from None
    return factory(url)
