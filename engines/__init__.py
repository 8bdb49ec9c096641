"""The only place that knows OpenSearch from Elasticsearch.

Everything above this package speaks to :class:`~engines.base.SearchEngine`; the two adapters
differ in client creation, the vector field mapping, the kNN clause, the analyzer the node
offers, and OpenSearch's server-side ``hybrid`` query. Only this package sends raw REST calls.
"""
from engines.base import (
    BulkOutcome,
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    HybridQuery,
    SearchEngine,
    is_retryable_status,
)
from engines.factory import ENGINE_KINDS, EngineKind, connect

__all__ = [
    "BulkOutcome",
    "ENGINE_KINDS",
    "EngineError",
    "EngineKind",
    "EngineRequestError",
    "EngineUnavailable",
    "HybridQuery",
    "SearchEngine",
    "connect",
    "is_retryable_status",
]
