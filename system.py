"""The composition root: the whole system built once, from one :class:`~settings.Settings`.

Every process takes its parts from here: the CLI and the HTTP service (search, enqueue, dead
letters), the worker processes (``workers.main``), the demo, the tests and the benchmarks. Each
part is built on first use and then kept, so a producer never loads the model and a search
process never connects to Redis unless it enqueues.

    system = System(Settings.from_env())
    system.searcher.search(SearchRequest("red handbag"))
    system.producer.enqueue(events)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from celery import Celery

from acebert.encoder import CachedQueryEncoder, Encoder
from engines import EngineError, SearchEngine, connect
from es_mappings import IndexLayout, IndexNames
from indexer.indices import ensure_index
from indexer.models import IndexModels, ModelMismatch, model_meta
from query_rewriter.cursor import RedisCursorStore
from query_rewriter.knn_breadth import KnnBreadth, oversample_for
from query_rewriter.search import HybridSearcher
from settings import Settings
from workers.app import make_celery
from workers.producer import Producer
from workers.queue import EventQueue
from workers.tasks import DrainParts, register_drain, run_sweeper, warm_up_each_process

log = logging.getLogger(__name__)
# How often each worker looks for batches of dead workers (their leases last workers.queue.LEASE_S).
SWEEP_EVERY_S = 2.0


@dataclass
class System:
    settings: Settings

    @cached_property
    def names(self) -> IndexNames:
        return IndexNames(self.settings.index_prefix)

    @cached_property
    def layout(self) -> IndexLayout:
        """Shards, replicas, refresh interval, vector storage and HNSW graph of every index version this system
        creates."""
        s = self.settings
        return IndexLayout(s.index_shards, s.index_replicas, s.index_refresh_interval, s.index_vectors, s.index_hnsw)

    @cached_property
    def engine(self) -> SearchEngine:
        return connect(self.settings.engine, self.settings.engine_url)

    @cached_property
    def encoder(self) -> Encoder:
        """The settings' model: that of a new first index (an existing index names its own, see ``models``)."""
        from acebert.loading import load_encoder  # the model's libraries load only when asked for

        return load_encoder(self.settings.encoder, threads=self.settings.encoder_threads)

    def _load_encoder(self, spec: str) -> Encoder:
        """The encoder ``spec`` names; the settings' one is loaded once, however its path is written
        (an index records the absolute spec)."""
        from acebert.loading import absolute_spec, load_encoder

        if absolute_spec(spec) == absolute_spec(self.settings.encoder):
            return self.encoder
        return load_encoder(spec, threads=self.settings.encoder_threads)

    @cached_property
    def models(self) -> IndexModels:
        """Which index is behind each alias and the encoder of its model: workers and searches follow it."""
        from acebert.loading import blend_weights

        size = self.settings.query_cache_size

        def load(spec: str) -> Encoder:
            encoder = self._load_encoder(spec)
            return CachedQueryEncoder(encoder, size) if size > 0 else encoder

        return IndexModels(self.engine, self.names, load, self.settings.encoder, blend=blend_weights)

    @cached_property
    def searcher(self) -> HybridSearcher:
        """Searches the index behind the read alias with that index's model, following a switch."""
        return HybridSearcher(self.engine, self.models.index_for_reads, self.models.encoder_of,
                              RedisCursorStore(self.queue.redis, self.settings.queue_prefix),
                              KnnBreadth(self.engine, self.settings.knn_candidates), self.models.weights_of,
                              lambda index: oversample_for(self.models.vectors_of(index)))

    @cached_property
    def queue(self) -> EventQueue:
        return EventQueue.from_url(self.settings.redis_url, self.settings.queue_prefix)

    @cached_property
    def celery(self) -> Celery:
        return make_celery(self.settings)

    @cached_property
    def producer(self) -> Producer:
        return Producer(self.queue, self.celery, self.settings.batch_size)

    def ensure_index(self) -> str:
        """The index behind the write alias, created (version 1 and both aliases) on first use."""
        from acebert.loading import absolute_spec

        meta = model_meta(absolute_spec(self.settings.encoder), self.encoder.model_version)
        return ensure_index(self.engine, self.names, self.encoder.dimension, self.layout, meta)

    @cached_property
    def drain_parts(self) -> DrainParts:
        """What the drain task needs; built in the worker's pool process on its first batch.

        Not cached when building fails (engine down): the task retries and builds again.
        """
        self.ensure_index()
        return DrainParts(self.engine, lambda: self.models.for_writes().encoder, self.names.write_alias,
                          self.settings.image_root)

    def worker_app(self) -> Celery:
        """The Celery app with the drain task registered, the model loaded in each pool process,
        and the sweep of dead workers' batches running in the main process."""
        register_drain(self.celery, lambda: self.queue, lambda: self.drain_parts, self.settings.batch_size,
                       self.settings.ingest_max_retries)
        warm_up_each_process(self._encoder_for_writes)
        run_sweeper(self.celery, self.sweep, SWEEP_EVERY_S)
        return self.celery

    def _encoder_for_writes(self) -> Encoder:
        """The model of the write index, or the settings' one while the engine cannot say which or that model
        is refused (its batches then park with the reason)."""
        try:
            return self.models.for_writes().encoder
        except EngineError as exc:
            log.warning("could not ask the engine which model the write index uses (%s); loading %s",
                        exc, self.settings.encoder)
            return self.encoder
        except ModelMismatch as exc:  # each batch parks with this error until an operator acts on it
            log.error("%s", exc)
            return self.encoder

    def sweep(self) -> None:
        """Take back dead workers' batches and make sure every queued event has a drain task."""
        report = self.queue.sweep()
        if report.returned or report.parked:
            log.warning("took back %d events from dead workers; parked %d that kept killing them",
                        report.returned, len(report.parked))
        self.producer.schedule_backlog()

    def close(self) -> None:
        """Release the engine client's connections, if one was made."""
        if "engine" in self.__dict__:
            self.engine.close()
