"""The one logical product schema, rendered for OpenSearch and Elasticsearch, and index naming.

Nothing here talks to an engine: these are pure functions from settings to request bodies, so a
reader can print the exact JSON that creates an index.
"""
from es_mappings.naming import IndexNames
from es_mappings.schema import (
    DIGEST_FIELD,
    FLOAT_VECTORS,
    INT8_VECTORS,
    LIVE_PRODUCTS,
    MAX_PRICE,
    PRODUCT_FIELDS,
    UNSHOWN_FIELDS,
    VECTOR_FIELD,
    VECTOR_KINDS,
    VECTORS_META,
    Field,
    HnswGraph,
    IndexLayout,
    index_body,
    is_quantized,
)

__all__ = ["DIGEST_FIELD", "FLOAT_VECTORS", "Field", "HnswGraph", "INT8_VECTORS", "IndexLayout", "IndexNames",
           "LIVE_PRODUCTS", "MAX_PRICE", "PRODUCT_FIELDS", "UNSHOWN_FIELDS", "VECTOR_FIELD", "VECTOR_KINDS",
           "VECTORS_META", "index_body", "is_quantized"]
