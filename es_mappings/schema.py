"""The logical product schema and its rendering into an index body.

The schema is written once, engine-neutrally. An engine adapter supplies only what differs: the
vector field's mapping, index-level settings (``index.knn`` on OpenSearch), and the text
analyzer the node offers (the reduced Elasticsearch build has no ``english`` analyzer).
Optional fields stay optional: the benchmark catalogue fills only id, title, category and image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

VECTOR_FIELD = "vector"
DIGEST_FIELD = "encoded_input"  # what made the vector (indexer.documents.input_digest)
# What searches leave out of the documents they return: the worker's bookkeeping, not product data.
UNSHOWN_FIELDS = (VECTOR_FIELD, DIGEST_FIELD)
# ``price`` is a 32-bit float: a bound far above any real price (in any currency) keeps a typo
# like 1e300 out of events and search filters with a clear error, not an engine refusal later.
MAX_PRICE = 1e12
TEXT_ANALYZER = "product_text"


@dataclass(frozen=True)
class Field:
    """One logical field: a name, its mapping, and whether BM25 searches it (with a boost)."""

    name: str
    mapping: Mapping[str, Any]
    bm25_boost: float | None = None


def _text(with_keyword: bool = False) -> dict[str, Any]:
    mapping: dict[str, Any] = {"type": "text", "analyzer": TEXT_ANALYZER}
    if with_keyword:
        mapping["fields"] = {"keyword": {"type": "keyword", "ignore_above": 256}}
    return mapping


PRODUCT_FIELDS: tuple[Field, ...] = (
    Field("product_id", {"type": "keyword"}),
    Field("title", _text(), bm25_boost=3.0),
    Field("description", _text(), bm25_boost=1.0),
    # "Apparel > Topwear": searchable as text, filterable by exact path and by any ancestor.
    Field("category", _text(with_keyword=True), bm25_boost=1.5),
    Field("category_path", {"type": "keyword"}),
    Field("brand", _text(with_keyword=True), bm25_boost=2.0),
    # Free-form key/value attributes supplied by the catalogue owner, kept as keywords.
    Field("attributes", {"type": "object", "dynamic": True}),
    # float, not scaled_float: scaled_float lives in a module some Elasticsearch builds lack.
    Field("price", {"type": "float"}),
    Field("image", {"type": "keyword", "index": False}),
    Field("has_image", {"type": "boolean"}),
    Field("model_version", {"type": "keyword"}),
    # A digest of what the product tower read (indexer.documents.input_digest): an update that
    # changes only the price or attributes finds it unchanged and keeps the stored vector.
    Field(DIGEST_FIELD, {"type": "keyword", "index": False, "doc_values": False}),
    Field("event_version", {"type": "long"}),
    # A delete's tombstone (indexer.documents.tombstone): no text, no vector, just its version.
    Field("deleted", {"type": "boolean"}),
    Field("updated_at", {"type": "date"}),
)

# Documents that are products, not tombstones: for counts and listings (the two search legs never
# see a tombstone, which has neither text nor vector).
LIVE_PRODUCTS: dict[str, Any] = {"bool": {"must_not": [{"term": {"deleted": True}}]}}

BM25_FIELDS: tuple[str, ...] = tuple(
    f"{f.name}^{f.bm25_boost:g}" for f in PRODUCT_FIELDS if f.bm25_boost is not None
)


FLOAT_VECTORS, INT8_VECTORS = "float", "int8"
VECTOR_KINDS = (FLOAT_VECTORS, INT8_VECTORS)
"""How an index stores its vectors (``INDEX_VECTORS``); each index records its own in ``_meta``."""
VECTORS_META = "vectors"


def is_quantized(vectors: str) -> bool:
    """Whether an index that stores ``vectors`` (one of :data:`VECTOR_KINDS`) holds int8 vectors."""
    return vectors == INT8_VECTORS


@dataclass(frozen=True)
class HnswGraph:
    """How the vector field's HNSW graph is built: fixed when an index version is created.

    ``m``: links per node; ``ef_construction``: how many candidates an insertion weighs before it
    links. A larger graph misses fewer true neighbours at the same search breadth, for a slower build.
    The default is twice the engines' (m 16, ef_construction 100) because a million vectors need it:
    on the same synthetic million (``python -m bench.performance.scale --graphs``, docs/performance.md,
    target 4) m 16 / ef_construction 128 found recall@10 0.938 at 800 candidates and 0.947 at 1,600,
    m 32 / 256 found 0.975 at 400 and 0.987 at 800, at the same hybrid/BM25 latency ratio. The price
    is in the engine's build, not in memory or in the workers: bulk loading 1.1-1.7x slower and
    force-merging 1.9-2x slower, the searched files 0.5% larger, worker ingestion unchanged
    (428 against 434 events/s, p95 1.13 s both at 200 events/s).
    """

    m: int = 32
    ef_construction: int = 256

    def __post_init__(self) -> None:
        # Lucene's own bounds (HnswGraphBuilder: max connections 512, beam width 3200).
        if not 2 <= self.m <= 512 or not 1 <= self.ef_construction <= 3200:
            raise ValueError(f"an HNSW graph needs m in 2..512 and ef_construction in 1..3200, not {self}")

    @classmethod
    def parse(cls, text: str) -> HnswGraph:
        """``"M:EF_CONSTRUCTION"``, e.g. ``"32:256"``: how a command line names a graph."""
        m, _, ef = text.partition(":")
        try:
            return cls(int(m), int(ef))
        except ValueError as exc:
            raise ValueError(f"an HNSW graph is written M:EF_CONSTRUCTION, e.g. 32:256, not {text!r} ({exc})") from exc

    def __str__(self) -> str:
        return f"{self.m}:{self.ef_construction}"


@dataclass(frozen=True)
class IndexLayout:
    """How an index version is spread over a cluster, and how soon writes become searchable.

    The defaults suit one local node. A cluster wants ``replicas >= 1`` (losing a node then loses
    no data and the index stays searchable) and shards sized by ``docs/scaling.md``.
    """

    shards: int = 1
    replicas: int = 0
    refresh_interval: str = "1s"
    vectors: str = FLOAT_VECTORS  # or INT8_VECTORS: Lucene scalar quantisation, searched with float rescoring
    graph: HnswGraph = HnswGraph()

    def __post_init__(self) -> None:
        if self.shards < 1 or self.replicas < 0:
            raise ValueError(f"an index needs at least 1 shard and 0 or more replicas, not {self}")
        if self.vectors not in VECTOR_KINDS:
            raise ValueError(f"index vectors are one of {', '.join(VECTOR_KINDS)}, not {self.vectors!r}")

    @property
    def quantized(self) -> bool:
        return is_quantized(self.vectors)


def index_body(
    *,
    vector_mapping: Mapping[str, Any],
    text_analyzer: Mapping[str, Any],
    extra_settings: Mapping[str, Any] | None = None,
    layout: IndexLayout = IndexLayout(),
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``PUT /<index>``: settings, analyzer and mappings for one index version.

    ``meta`` becomes the mapping's ``_meta``: what the index records about itself (the model that
    made its vectors, see :mod:`indexer.models`).
    """
    properties = {f.name: dict(f.mapping) for f in PRODUCT_FIELDS}
    properties[VECTOR_FIELD] = dict(vector_mapping)
    return {
        "settings": {
            "index": {"number_of_shards": layout.shards, "number_of_replicas": layout.replicas,
                      "refresh_interval": layout.refresh_interval, **(extra_settings or {})},
            "analysis": {"analyzer": {TEXT_ANALYZER: dict(text_analyzer)}},
        },
        "mappings": {
            "_meta": dict(meta or {}),
            "dynamic": "strict",
            "dynamic_templates": [
                {
                    "attributes_as_keywords": {
                        "path_match": "attributes.*",
                        "mapping": {"type": "keyword", "ignore_above": 256},
                    }
                }
            ],
            "properties": properties,
        },
    }
