"""How wide the kNN leg's HNSW search is: wider than the engines' defaults at every size, widest on a large index.

An HNSW search keeps ``candidates`` vectors while it walks the graph (OpenSearch's
``ef_search``, Elasticsearch's ``num_candidates``). The engines' defaults (100 on OpenSearch,
``max(2k, 100)`` = 200 for the leg of 100 on Elasticsearch) lose relevance even on a small index,
by how well the graph happened to be built: on the 12.9k-product catalogue, an index filled by the
workers gave the trained model's dense leg test nDCG@10 0.887 on OpenSearch at the default against
0.907 at 400 candidates and by exact search, and 0.902 against 0.906 on Elasticsearch
(``python -m bench.relevance``, docs/relevance.md, "kNN breadth"); 400 and 800 score the same on
dev there. At a million vectors recall@10 falls to 0.92 at the default in the project's graph
(m 32, ef_construction 256) and 0.82-0.83 in the engines' smaller one; 800 candidates bring it to
0.987 and 0.924-0.969 (``python -m bench.performance.scale``, docs/performance.md), for 5-8% more
hybrid p50.
``KNN_CANDIDATES`` (settings) fixes one value for every index instead.
"""
from __future__ import annotations

import time
from typing import Callable

from engines import SearchEngine
from es_mappings import is_quantized

SMALL_INDEX_CANDIDATES = 400
"""Up to :data:`LARGE_INDEX_DOCUMENTS`: the breadth at which dev nDCG@10 stopped rising on both engines
(100/200/400/800 candidates, docs/relevance.md); about 2% more hybrid p50 than 100 at 12.9k products
(docs/performance.md, scale)."""
LARGE_INDEX_DOCUMENTS = 100_000
"""Above this many documents an index is searched with :data:`LARGE_INDEX_CANDIDATES`.

At 100 candidates recall@10 fell from 0.97-0.98 at 100k to 0.82-0.83 at 1M (two runs), about
0.15 per tenfold, so it crosses 0.95 not far above 100k; 800 candidates cost about 10% of hybrid p50
at 100k."""
LARGE_INDEX_CANDIDATES = 800
"""At a million synthetic vectors in the default graph (``es_mappings.HnswGraph``, m 32,
ef_construction 256): recall@10 0.987, against 0.975 at 400 for 5% less hybrid p50. An index built
with m 16 / ef_construction 128 (the default before 2026-12-06) needs the breadth more and still
falls short: 0.924-0.969 in four builds, and 1,600 candidates gave only 0.940-0.981; past this
breadth its graph, not the walk, limits recall (docs/performance.md, scale)."""
RESCORE_OVERSAMPLE = 2.0
"""An index of int8 vectors is searched for this many times the leg's hits by the quantised scores,
re-ranked by its float vectors: recall@10 0.989-0.993 against 0.82-0.98 without, at 12.9k products on
both engines, and 3x added nothing (``python -m bench.performance.quantization``, docs/performance.md)."""
COUNT_TTL_S = 300.0
"""How long an index's document count is trusted: an index grows slowly next to this."""


def candidates_for(documents: int) -> int:
    """The breadth for an index of ``documents``."""
    return LARGE_INDEX_CANDIDATES if documents > LARGE_INDEX_DOCUMENTS else SMALL_INDEX_CANDIDATES


def oversample_for(vectors: str) -> float | None:
    """The rescoring an index's kNN leg asks for, by how the index stores its vectors (its ``_meta``)."""
    return RESCORE_OVERSAMPLE if is_quantized(vectors) else None


class KnnBreadth:
    """The kNN breadth of each index searched: ``fixed`` if set, else by the index's size.

    Sizes are counted with one ``_count`` per index at most every :data:`COUNT_TTL_S`, so an
    index that grows past the threshold is searched wider within minutes, without a restart.
    """

    def __init__(self, engine: SearchEngine, fixed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"KNN_CANDIDATES must be a positive number of candidates, not {fixed}")
        self.engine = engine
        self.fixed = fixed
        self.clock = clock
        self._counted: dict[str, tuple[float, int]] = {}  # index -> (when, documents)

    def __call__(self, index: str) -> int | None:
        if self.fixed is not None:
            return self.fixed
        now = self.clock()
        counted = self._counted.get(index)
        if counted is None or now - counted[0] >= COUNT_TTL_S:
            counted = (now, self.engine.count(index))
            self._counted[index] = counted
        return candidates_for(counted[1])
