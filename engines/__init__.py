"""The only place that knows OpenSearch from Elasticsearch.

Everything above this package speaks to :class:`~engines.base.SearchEngine`; the two adapters
differ in client creation, the vector field mapping, the kNN clause, the analyzer the node
offers, and OpenSearch's server-side ``hybrid`` query.
"""
from engines.base import (
    BulkOutcome,
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    SearchEngine,
)
from engines.factory import ENGINE_KINDS, connect

__all__ = [
    "BulkOutcome",
    "ENGINE_KINDS",
    "EngineError",
    "EngineRequestError",
    "EngineUnavailable",
    "SearchEngine",
    "connect",
]
