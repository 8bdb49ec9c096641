"""Runtime settings shared by the workers, the HTTP service and the CLI.

A ``Settings`` is a plain value: constructing one reads nothing. Only :meth:`Settings.from_env`
reads the environment, and only the composition root's entry points call it (the CLI, the
worker entry point ``workers.main``, the HTTP factory). Everything else receives its settings,
so a test or a benchmark builds a whole system from one value and nothing needs patching.

The environment names are also used by ``docker-compose.yml`` (a test checks that), so one list
of variables configures every process; :meth:`Settings.to_env` gives a worker process the same
settings as the process that starts it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from es_mappings import FLOAT_VECTORS, VECTOR_KINDS, HnswGraph


@dataclass(frozen=True)
class Settings:
    engine: str = "opensearch"
    engine_url: str = "http://127.0.0.1:9200"
    redis_url: str = "redis://127.0.0.1:6379/0"
    index_prefix: str = "products"
    # "minilm", a path to an ACE-BERT checkpoint directory, or onnx[-int8]:DIR for its export.
    encoder: str = "minilm"
    # Relative image paths in events are resolved against this directory.
    image_root: Path = Path(".")
    batch_size: int = 64
    # Key prefix of the event queue, in-flight and dead-letter structures in Redis.
    queue_prefix: str = "acebert"
    # New index versions (first index, re-embed) get these. One shard and no replica suit one
    # local node; a cluster wants replicas >= 1 so that losing a node loses no data (docs/scaling.md).
    index_shards: int = 1
    index_replicas: int = 0
    # How soon a write becomes searchable; longer intervals make bulk ingestion cheaper.
    index_refresh_interval: str = "1s"
    # Query vectors the search service keeps (LRU); 0 turns the cache off. A hit skips the query
    # tower: shop queries repeat, and encoding is the largest part of a hybrid query on a CPU.
    query_cache_size: int = 10000
    # The kNN leg's HNSW search breadth (ef_search / num_candidates) for every index; None picks
    # it by index size: 400, and 800 above query_rewriter.knn_breadth's threshold (100,000).
    knn_candidates: int | None = None
    # How new index versions store their vectors: "float", or "int8" (Lucene scalar quantisation:
    # 3.7-3.9x less memory searched; the searcher rescores each index that holds int8 vectors by
    # the float ones it keeps, see docs/performance.md). An existing index keeps what it recorded.
    index_vectors: str = FLOAT_VECTORS
    # How new index versions build their HNSW graph, "M:EF_CONSTRUCTION" (links per node, insertion
    # breadth); default 32:256, which a million vectors need (es_mappings.HnswGraph says why). A
    # smaller graph builds faster and misses more neighbours. An index keeps the graph it was built with.
    index_hnsw: HnswGraph = HnswGraph()
    # The key the HTTP API's write and operator endpoints (POST /events, dead letters) require in
    # the X-API-Key header. Unset: those endpoints refuse every call. A secret: from the
    # environment (or a .env file git ignores), never printed.
    api_key: str | None = field(default=None, repr=False)
    # Intra-op threads of the encoder in each worker pool process; None leaves the library's
    # default. One per process when several pool processes share a small machine.
    encoder_threads: int | None = None
    # How often the drain task retries a batch (engine outage, Redis blip, 429 items) before it
    # parks the events in the dead-letter list. Eight back off 1, 2, 4, 8, 16, 30, 30, 30 s: about
    # 2 min, longer than a one-node engine restart on a small machine (docs/reliability.md).
    ingest_max_retries: int = 8
    # A batch running longer than this is killed (and redelivered: acks are late).
    ingest_task_time_limit_s: int = 240
    # A task a dead worker held is redelivered after this long.
    ingest_visibility_timeout_s: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from ``environ`` (default ``os.environ``); unset or empty names keep the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (attribute, parse) in _ENV.items():
            raw = environ.get(name, "")
            if raw:
                try:
                    values[attribute] = parse(raw)
                except ValueError as error:
                    raise ValueError(f"{name}={raw!r} is not a valid {attribute} setting ({error})") from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables :meth:`from_env` reads back.

        A relative path (the image root) goes out absolute: these variables start another process,
        such as a worker, whose working directory may differ, and the path must name the same
        directory there.
        """
        env = {}
        for name, (attribute, _) in _ENV.items():
            value = getattr(self, attribute)
            if value is not None:
                env[name] = str(value.absolute() if isinstance(value, Path) else value)
        return env


def _optional_int(text: str) -> int | None:
    return int(text) if text else None


def _vector_kind(text: str) -> str:
    if text not in VECTOR_KINDS:
        raise ValueError(f"choose one of {', '.join(VECTOR_KINDS)}")
    return text


# Environment name -> (Settings attribute, parser). One table, so the names, compose and the
# parsing cannot drift apart.
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SEARCH_ENGINE": ("engine", str),
    "SEARCH_URL": ("engine_url", str),
    "REDIS_URL": ("redis_url", str),
    "INDEX_PREFIX": ("index_prefix", str),
    "ACEBERT_ENCODER": ("encoder", str),
    "PRODUCT_IMAGE_ROOT": ("image_root", Path),
    "INGEST_BATCH_SIZE": ("batch_size", int),
    "QUEUE_PREFIX": ("queue_prefix", str),
    "INDEX_SHARDS": ("index_shards", int),
    "INDEX_REPLICAS": ("index_replicas", int),
    "INDEX_REFRESH_INTERVAL": ("index_refresh_interval", str),
    "QUERY_CACHE_SIZE": ("query_cache_size", int),
    "KNN_CANDIDATES": ("knn_candidates", _optional_int),
    "INDEX_VECTORS": ("index_vectors", _vector_kind),
    "INDEX_HNSW": ("index_hnsw", HnswGraph.parse),
    "API_KEY": ("api_key", str),
    "ACEBERT_ENCODER_THREADS": ("encoder_threads", _optional_int),
    "INGEST_MAX_RETRIES": ("ingest_max_retries", int),
    "INGEST_TASK_TIME_LIMIT": ("ingest_task_time_limit_s", int),
    "INGEST_VISIBILITY_TIMEOUT": ("ingest_visibility_timeout_s", int),
}
ENV_NAMES: tuple[str, ...] = tuple(_ENV)
