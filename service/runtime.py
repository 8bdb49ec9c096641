"""Build the long-lived objects (engine, encoder, searcher, queue) from settings, once."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from acebert.encoder import CachedQueryEncoder, Encoder, load_encoder
from engines import SearchEngine, connect
from es_mappings import IndexNames
from query_rewriter.search import HybridSearcher
from settings import Settings
from workers.queue import EventQueue


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def names(self) -> IndexNames:
        return IndexNames(self.settings.index_prefix)

    @cached_property
    def engine(self) -> SearchEngine:
        return connect(self.settings.engine, self.settings.engine_url)

    @cached_property
    def encoder(self) -> Encoder:
        return load_encoder(self.settings.encoder)

    @cached_property
    def searcher(self) -> HybridSearcher:
        size = self.settings.query_cache_size
        encoder = CachedQueryEncoder(self.encoder, size) if size > 0 else self.encoder
        return HybridSearcher(self.engine, encoder, self.names.read_alias)

    @cached_property
    def queue(self) -> EventQueue:
        return EventQueue.from_url(self.settings.redis_url, self.settings.queue_prefix)
