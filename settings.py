"""Runtime settings shared by the workers, the HTTP service and the CLI, read from the environment.

The same names are used by ``docker-compose.yml`` (a test checks that), so one list of variables
configures every process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default) or default


@dataclass(frozen=True)
class Settings:
    engine: str = field(default_factory=lambda: _env("SEARCH_ENGINE", "opensearch"))
    engine_url: str = field(default_factory=lambda: _env("SEARCH_URL", "http://127.0.0.1:9200"))
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    index_prefix: str = field(default_factory=lambda: _env("INDEX_PREFIX", "products"))
    # "minilm" or a path to an ACE-BERT checkpoint directory.
    encoder: str = field(default_factory=lambda: _env("ACEBERT_ENCODER", "minilm"))
    # Relative image paths in events are resolved against this directory.
    image_root: Path = field(default_factory=lambda: Path(_env("PRODUCT_IMAGE_ROOT", ".")))
    batch_size: int = field(default_factory=lambda: int(_env("INGEST_BATCH_SIZE", "64")))
    # Key prefix of the event queue, in-flight and dead-letter structures in Redis.
    queue_prefix: str = field(default_factory=lambda: _env("QUEUE_PREFIX", "acebert"))
    # Query vectors the search service keeps (LRU); 0 turns the cache off. A hit skips the query
    # tower: shop queries repeat, and encoding is the largest part of a hybrid query on a CPU.
    query_cache_size: int = field(default_factory=lambda: int(_env("QUERY_CACHE_SIZE", "10000")))

    @classmethod
    def from_env(cls) -> "Settings":
        return cls()

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables a worker or service process reads."""
        return {
            "SEARCH_ENGINE": self.engine,
            "SEARCH_URL": self.engine_url,
            "REDIS_URL": self.redis_url,
            "INDEX_PREFIX": self.index_prefix,
            "ACEBERT_ENCODER": self.encoder,
            "PRODUCT_IMAGE_ROOT": str(self.image_root),
            "INGEST_BATCH_SIZE": str(self.batch_size),
            "QUEUE_PREFIX": self.queue_prefix,
            "QUERY_CACHE_SIZE": str(self.query_cache_size),
        }


ENV_NAMES = (
    "SEARCH_ENGINE",
    "SEARCH_URL",
    "REDIS_URL",
    "INDEX_PREFIX",
    "ACEBERT_ENCODER",
    "PRODUCT_IMAGE_ROOT",
    "INGEST_BATCH_SIZE",
    "QUEUE_PREFIX",
    "QUERY_CACHE_SIZE",
)
