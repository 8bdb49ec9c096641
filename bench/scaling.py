"""The sizing guide: memory, disk, shards, workers and fusion cost from 1M to 100M products.

``python -m bench.scaling [--results DIR] [--doc PATH]``

Nothing is measured here. The guide is arithmetic over the project's own measurements
(``docs/results/performance-*.json``: the scale curve, encoding rates, ingestion rates and the
bulk ceiling, query latency), one GPU figure that no JSON holds (:data:`GPU_MEASUREMENT`, with
its provenance), and documented engine formulas and rules of thumb (:data:`SOURCES`). Every
figure that goes beyond what was measured is printed with its inputs and formula and labelled
**extrapolation**, next to the measurement it comes from, so a reader can redo it with their
own numbers. The arithmetic lives in small pure functions (tests/unit/test_scaling_guide.py);
the rest only loads, renders and writes ``docs/scaling.md`` and ``docs/results/scaling.json``.

``docs/results/scaling-cluster.json``, when present, is written by ``python -m bench.cluster`` (a
real two-node cluster); its measurements are shown as a table with the command and machine, and
a file of any other shape has its key/value pairs shown as they are.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from bench.report import RESULTS, ROOT, commit, header, machine, markdown_table, write_json
from es_mappings import HnswGraph

DOC = ROOT / "docs" / "scaling.md"
COMMAND = "python -m bench.scaling"
CLUSTER_RESULTS = "scaling-cluster.json"
UPDATES_RESULTS = "performance-ingestion-updates.json"  # bench.performance.ingestion --updates (optional)
PRICE_CHANGE_SHARE = 0.9  # the worked example of section 4: nine events in ten leave title, category and photo alone

GB = 1e9
"""Decimal gigabytes, the unit of the OpenSearch memory examples and of the shard-size rule."""

HNSW_OVERHEAD = 1.1
"""The OpenSearch k-NN docs' factor on top of vector + graph-link bytes in every HNSW estimate."""

PRODUCT_COUNTS = (1_000_000, 10_000_000, 100_000_000)
SHARD_TARGET_GB = (10.0, 30.0, 50.0)
"""10-50 GB is the rule of thumb; 30 GB is the top of the range AWS gives search-heavy workloads."""
RECOMMENDED_SHARD_GB = 30.0
DATA_NODES = 3
REPLICAS = 1
REEMBED_PRODUCTS = 10_000_000
REEMBED_SECONDS = 3600.0
EVENT_RATES = (100.0, 1_000.0, 10_000.0)
FUSION_DEPTH = 100
"""``SearchRequest.depth``'s default: hits per leg (a unit test keeps the two equal)."""
FUSION_SHARDS = (1, 5, 20, 50)
FUSION_BUDGET_PER_LEG = 2_000
"""An example coordinator budget (20 shards x depth 100) to show what fewer shards buy."""
QUANTIZATIONS = (
    ("float32 (what the project maps)", 32), ("int8 scalar quantization", 8), ("1-bit binary quantization", 1),
)
"""Label and bits per dimension of the vector encodings the memory table compares."""

GPU_MEASUREMENT: dict[str, Any] = {
    "device": "one NVIDIA H200",
    "product_tower_title_image_fp32_products_per_s": 2324.0,
    "featurizer_alone_max_products_per_s": 3367.0,
    "plain_sentence_transformer_titles_per_s": 13958.0,
    "measured": "2026-11-30",
    "provenance": (
        "measured on 2026-11-30 by an earlier session with the project's code on one H200 and recorded in the "
        "'Scale out' issue text; no JSON under docs/results holds it, so it is copied here by hand"
    ),
}
"""The only GPU figures the project has. Not re-measured by this command."""

@dataclass(frozen=True)
class Reference:
    """A documented formula or rule the guide relies on: a short name, what it says, where."""

    name: str
    says: str
    url: str

    def link(self) -> str:
        return f"[{self.name}]({self.url})"


SOURCES: dict[str, Reference] = {
    "hnsw_float": Reference(
        "OpenSearch k-NN docs, Methods and engines: Memory estimation",
        "HNSW needs about `1.1 * (4 * dimension + 8 * m)` bytes/vector; \"Having a replica doubles the total "
        "number of vectors\"",
        "https://docs.opensearch.org/latest/mappings/supported-field-types/knn-methods-engines/",
    ),
    "hnsw_int8": Reference(
        "OpenSearch docs, Lucene scalar quantization: Memory estimation",
        "`1.1 * (dimension + 8 * m)` bytes/vector; quantization \"slightly increases disk usage because it "
        "requires storing both the raw input vectors and the quantized vectors\"",
        "https://docs.opensearch.org/latest/vector-search/optimizing-storage/lucene-scalar-quantization/",
    ),
    "hnsw_binary": Reference(
        "OpenSearch docs, Binary quantization: HNSW memory estimation",
        "`1.1 * (dimension * bits / 8 + 8 * m)` bytes/vector; 1 bit per dimension is 32x compression",
        "https://docs.opensearch.org/latest/vector-search/optimizing-storage/binary-quantization/",
    ),
    "shard_size": Reference(
        "Elastic docs, Size your shards",
        "\"Aim for shards of up to 200M documents, or with sizes between 10GB and 50GB\"",
        "https://www.elastic.co/docs/deploy-manage/production-guidance/optimize-performance/size-shards",
    ),
    "shard_size_search": Reference(
        "Amazon OpenSearch Service Lens, AOSPERF01-BP01",
        "shards of 10-50 GiB; 10-30 GB for search-intensive workloads, 30-50 GB for log analytics",
        "https://docs.aws.amazon.com/wellarchitected/latest/amazon-opensearch-service-lens/aosperf01-bp01.html",
    ),
    "search_type": Reference(
        "Elasticsearch reference, Search Type",
        "each shard returns its own top hits for the coordinating node to sort, and scores with its own term "
        "frequencies unless `dfs_query_then_fetch` first gathers them from all shards (OpenSearch's Search API "
        "documents the same two `search_type` values: dfs is \"usually slower but more accurate\")",
        "https://www.elastic.co/guide/en/elasticsearch/reference/6.x/search-request-search-type.html",
    ),
}


# --- the arithmetic: pure, small, each with the reason it is the right formula ---------------
def hnsw_bytes_per_vector(dimension: int, m: int, bits: int = 32) -> float:
    """Bytes of RAM one vector needs in an HNSW graph: ``1.1 * (dimension * bits / 8 + 8 * m)``.

    OpenSearch's documented estimate: the vector itself (``bits`` per dimension: 32 for float,
    8 for int8 scalar quantization, 1 for binary) plus about ``8 * m`` bytes of graph links, with
    10% on top. It is what must stay in memory for kNN latency to hold; the same formula with
    ``bits=32`` is the docs' ``1.1 * (4 * dimension + 8 * m)``.
    """
    return HNSW_OVERHEAD * (dimension * bits / 8 + 8 * m)


def vector_copies_bytes(vectors: int, bytes_per_vector: float, replicas: int) -> float:
    """Bytes for ``vectors`` vectors held once per copy: a replica holds (and loads) all of them again."""
    return vectors * bytes_per_vector * (1 + replicas)


def per_node(total: float, nodes: int) -> float:
    """An even share of ``total`` per data node (shards and replicas spread evenly; the best case)."""
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    return total / nodes


def bytes_per_document(store_bytes: float, documents: int) -> float:
    """Measured index size per document: the whole primary store (vectors, graph, postings, _source)."""
    return store_bytes / documents


def shards_needed(total_bytes: float, shard_bytes: float) -> int:
    """Primary shards so that none holds more than ``shard_bytes`` (at least one)."""
    return max(1, math.ceil(total_bytes / shard_bytes))


def recommended_shards(total_bytes: float, shard_bytes: float, data_nodes: int) -> int:
    """:func:`shards_needed`, rounded up to a multiple of the data nodes once more than one is needed.

    A multiple of the node count puts the same number of primaries on every node, so indexing and
    the per-query shard work spread evenly; a single small shard stays one shard (every extra shard
    is one more top-``depth`` search and merge per query).
    """
    shards = shards_needed(total_bytes, shard_bytes)
    return shards if shards == 1 else data_nodes * math.ceil(shards / data_nodes)


def workers_needed(rate: float, rate_per_worker: float) -> int:
    """Workers (machines, processes or GPUs) that together reach ``rate`` items/s (at least one)."""
    if rate_per_worker <= 0:
        raise ValueError("rate_per_worker must be > 0")
    return max(1, math.ceil(rate / rate_per_worker))


def rate_per_worker(total_rate: float, workers: int) -> float:
    """A measured aggregate rate split evenly over the workers that produced it."""
    return total_rate / workers


def workers_for_mix(rate: float, changed_share: float, per_worker_new: float, per_worker_changed: float) -> int:
    """Workers for ``rate`` events/s of which ``changed_share`` keep their vectors (price or stock
    changes, each taking 1 / ``per_worker_changed`` of a worker-second) and the rest are encoded."""
    if not 0 <= changed_share <= 1:
        raise ValueError("changed_share is a share, between 0 and 1")
    seconds_per_event = (1 - changed_share) / per_worker_new + changed_share / per_worker_changed
    return max(1, math.ceil(rate * seconds_per_event))


def seconds_to_process(items: float, rate: float) -> float:
    """How long ``items`` take at ``rate`` items/s."""
    return items / rate


def coordinator_hits_per_leg(shards: int, depth: int) -> int:
    """(id, score) pairs the coordinating node merges for one leg: every shard sends its own top ``depth``.

    A shard cannot know another shard's scores, so each returns up to ``depth`` hits and the
    coordinator keeps the best ``depth`` of ``shards * depth``; the client then receives ``depth``.
    """
    return shards * depth


def depth_for_budget(budget_per_leg: int, shards: int) -> int:
    """The per-leg depth that keeps the coordinator's merge at ``budget_per_leg`` on ``shards`` shards."""
    return budget_per_leg // shards


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a measured input came from: its JSON file, the commit and command that wrote it."""

    file: str
    commit: str
    command: str

    def cite(self) -> str:
        return f"`{self.file}` (commit `{self.commit}`, `{self.command}`)"


def _load(results: Path, name: str) -> tuple[dict[str, Any], Source]:
    path = results / name
    data = json.loads(path.read_text())
    return data, Source(f"docs/results/{name}", str(data.get("commit", "?")), str(data.get("command", "?")))


@dataclass(frozen=True)
class Inputs:
    """Every measured number the guide uses, with its source."""

    scale: dict[str, Any]
    scale_src: Source
    encoding: dict[str, Any]
    encoding_src: Source
    ingestion: dict[str, Any]
    ingestion_src: Source
    query: dict[str, Any]
    query_src: Source
    cluster: dict[str, Any] | None
    updates: dict[str, Any] | None = None  # sustained price changes against new products, one run
    updates_src: Source | None = None

    @property
    def price_change_speedup(self) -> float | None:
        """Price changes / new products sustained by the same workers in one run (vectors kept vs encoded)."""
        if self.updates is None:
            return None
        summary = self.updates["summary"]
        return summary["sustained_updates_per_s"]["median"] / summary["sustained_events_per_s"]["median"]

    @property
    def float_mapping(self) -> dict[str, Any]:
        """The float32 vector mapping the scale bench measured (the project's default)."""
        return self.scale["vector_mappings"]["float"]

    @property
    def dimension(self) -> int:
        return int(self.float_mapping["dimension"])

    @property
    def graph(self) -> HnswGraph:
        """The HNSW graph of the measured mappings: the scale bench's first ``--graphs``."""
        parameters = self.float_mapping["method"]["parameters"]
        return HnswGraph(int(parameters["m"]), int(parameters["ef_construction"]))

    @property
    def m(self) -> int:
        return self.graph.m

    def measured(self, vectors: str) -> list[dict[str, Any]]:
        """The measured (not skipped) scale points with ``vectors`` storage (float or int8), built with the
        mappings' graph."""
        return [p for p in self.scale["points"]
                if not p.get("skipped") and p.get("vectors") == vectors and p["graph"] == str(self.graph)]

    @property
    def points(self) -> list[dict[str, Any]]:
        return self.measured("float")

    @property
    def largest(self) -> dict[str, Any]:
        return max(self.points, key=lambda p: p["documents"])

    @property
    def cpu_rate(self) -> float:
        return float(self.encoding["throughput"]["ONNX int8"]["median"])

    @property
    def sustained(self) -> float:
        return float(self.ingestion["summary"]["sustained_events_per_s"]["median"])

    @property
    def ceiling(self) -> float:
        return float(self.ingestion["summary"]["ceiling_events_per_s"]["median"])

    @property
    def ingestion_workers(self) -> int:
        return workers_started(self.ingestion)

    @property
    def opensearch_query(self) -> dict[str, Any]:
        return next(e for e in self.query["engines"] if e["engine"] == "opensearch")


def workers_started(ingestion: Mapping[str, Any]) -> int:
    """Workers of an ingestion run: one start time per worker process the benchmark started
    (``bench.performance.ingestion.WORKERS``)."""
    return len(ingestion["results"]["worker_start_s"])


def load_inputs(results: Path = RESULTS) -> Inputs:
    """The four performance results (required), the cluster and the price-change results (optional)."""
    scale, scale_src = _load(results, "performance-scale.json")
    encoding, encoding_src = _load(results, "performance-encoding.json")
    ingestion, ingestion_src = _load(results, "performance-ingestion.json")
    query, query_src = _load(results, "performance-query.json")
    cluster_path = results / CLUSTER_RESULTS
    cluster = json.loads(cluster_path.read_text()) if cluster_path.is_file() else None
    updates, updates_src = _load(results, UPDATES_RESULTS) if (results / UPDATES_RESULTS).is_file() else (None, None)
    return Inputs(scale, scale_src, encoding, encoding_src, ingestion, ingestion_src, query, query_src, cluster,
                  updates, updates_src)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted.key, leaf)`` pairs of nested dicts and lists, so any cluster JSON prints as a table."""
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return [(prefix, value)]
    pairs: list[tuple[str, Any]] = []
    for key, child in items:
        pairs += flatten(child, f"{prefix}.{key}" if prefix else key)
    return pairs


# --- the guide --------------------------------------------------------------------------------
def _gb(n_bytes: float) -> str:
    return f"{n_bytes / GB:,.2f} GB"


def _replicas(n: int) -> str:
    return f"{n} replica" + ("" if n == 1 else "s")


def _millions(n: int) -> str:
    return f"{n // 1_000_000:,}M"


EXTRA = "**extrapolation**"


def compute(inp: Inputs, data_nodes: int = DATA_NODES, replicas: int = REPLICAS) -> dict[str, Any]:
    """Every derived figure of the guide, as numbers (the JSON), from which the Markdown is written."""
    d, m = inp.dimension, inp.m
    big = inp.largest
    per_doc = bytes_per_document(big["store_bytes"], big["documents"])
    raw_vector = d * 4
    memory = {label: hnsw_bytes_per_vector(d, m, bits) for label, bits in QUANTIZATIONS}
    quantized_copy = {label: 0.0 if bits == 32 else d * bits / 8 for label, bits in QUANTIZATIONS}

    sizing = []
    for n in PRODUCT_COUNTS:
        primary = per_doc * n
        sizing.append({
            "products": n, "primary_bytes": primary, "with_replicas_bytes": primary * (1 + replicas),
            "shards": {f"{t:g} GB": shards_needed(primary, t * GB) for t in SHARD_TARGET_GB},
            "recommended_shards": recommended_shards(primary, RECOMMENDED_SHARD_GB * GB, data_nodes),
            "hnsw_per_node_bytes": {label: per_node(vector_copies_bytes(n, b, replicas), data_nodes)
                                    for label, b in memory.items()},
        })

    reembed_rate = REEMBED_PRODUCTS / REEMBED_SECONDS
    gpu_rate = GPU_MEASUREMENT["product_tower_title_image_fp32_products_per_s"]
    bulk_at_largest = float(big["docs_per_s"])
    per_worker = rate_per_worker(inp.sustained, inp.ingestion_workers)
    return {
        "dimension": d, "m": m, "data_nodes": data_nodes, "replicas": replicas,
        "store_bytes_per_doc": per_doc, "raw_float_vector_bytes": raw_vector,
        "rest_bytes_per_doc": per_doc - raw_vector,
        "hnsw_bytes_per_vector": memory, "quantized_copy_disk_bytes_per_doc": quantized_copy,
        "sizing": sizing,
        "reembed": {
            "products": REEMBED_PRODUCTS, "seconds": REEMBED_SECONDS, "rate_needed": reembed_rate,
            "cpu_rate_per_2core_machine": inp.cpu_rate, "cpu_machines": workers_needed(reembed_rate, inp.cpu_rate),
            "gpu_rate": gpu_rate, "gpus": workers_needed(reembed_rate, gpu_rate),
            "one_gpu_seconds": seconds_to_process(REEMBED_PRODUCTS, gpu_rate),
            "featurizer_cap": GPU_MEASUREMENT["featurizer_alone_max_products_per_s"],
            "bulk_docs_per_s_at_largest": bulk_at_largest, "merge_s_at_largest": float(big["merge_s"]),
            "documents_at_largest": int(big["documents"]),
            "engine_nodes_for_writes": workers_needed(reembed_rate, bulk_at_largest),
        },
        "ingestion": {
            "sustained": inp.sustained, "workers_measured": inp.ingestion_workers, "per_worker": per_worker,
            "ceiling": inp.ceiling,
            "rates": [{"events_per_s": r, "workers": workers_needed(r, per_worker),
                       "engine_nodes_at_ceiling": workers_needed(r, inp.ceiling), "over_ceiling": r > inp.ceiling}
                      for r in EVENT_RATES],
            "price_changes": None if inp.price_change_speedup is None else {
                "speedup": inp.price_change_speedup, "per_worker": per_worker * inp.price_change_speedup,
                "share": PRICE_CHANGE_SHARE,
                "rates": [{"events_per_s": r, "workers": workers_for_mix(r, PRICE_CHANGE_SHARE, per_worker,
                                                                         per_worker * inp.price_change_speedup)}
                          for r in EVENT_RATES],
            },
        },
        "fusion": {
            "depth": FUSION_DEPTH, "budget_per_leg": FUSION_BUDGET_PER_LEG,
            "rows": [{"shards": s, "per_leg": coordinator_hits_per_leg(s, FUSION_DEPTH),
                      "both_legs": 2 * coordinator_hits_per_leg(s, FUSION_DEPTH), "client_hits": 2 * FUSION_DEPTH,
                      "depth_for_budget": depth_for_budget(FUSION_BUDGET_PER_LEG, s)}
                     for s in FUSION_SHARDS],
        },
    }


HYBRID = "hybrid, ONNX int8 query tower"


def inputs_section(inp: Inputs) -> str:
    big = inp.largest
    os_q = inp.opensearch_query
    med, brk = os_q["medians"], os_q["breakdown"]
    method = inp.float_mapping["method"]
    rows = [
        ["vector mapping", f"{inp.dimension}-d float32, HNSW m = {inp.m}, ef_construction = "
         f"{method['parameters'].get('ef_construction')}, engine `{method.get('engine')}` (what "
         "`engines/opensearch.py` maps)", inp.scale_src.cite()],
        ["scale curve, largest point", f"{big['label']}: {big['documents']:,} docs, store {big['store_bytes']:,} B, "
         f"bulk {big['bulk_s']:.0f} s ({big['docs_per_s']:,.0f} docs/s), force-merge {big['merge_s']:.0f} s",
         inp.scale_src.cite()],
        ["CPU product encoding", f"{inp.cpu_rate:.1f} products/s (median of {inp.encoding['repeats']}), ONNX int8, "
         f"batch {inp.encoding['batch_size']}, {inp.encoding['threads']} threads on the 2-core VM "
         f"({inp.encoding['with_image']:,} of {inp.encoding['products']:,} products with an image)",
         inp.encoding_src.cite()],
        ["GPU product encoding", f"{GPU_MEASUREMENT['product_tower_title_image_fp32_products_per_s']:,.0f} products/s "
         f"(title + image, fp32, {GPU_MEASUREMENT['device']}); featurizer alone at most "
         f"{GPU_MEASUREMENT['featurizer_alone_max_products_per_s']:,.0f}/s; plain SentenceTransformer "
         f"{GPU_MEASUREMENT['plain_sentence_transformer_titles_per_s']:,.0f} titles/s",
         f"constant `GPU_MEASUREMENT` in `bench/scaling.py`: {GPU_MEASUREMENT['provenance']}"],
        ["ingestion, sustained", f"{inp.sustained:.1f} events/s (median of {inp.ingestion['repeats']}) with "
         f"{inp.ingestion_workers} Celery workers (concurrency 1, one encoder thread each, sharing the 2 cores "
         "with the engine)",
         inp.ingestion_src.cite()],
        ["ingestion, bulk ceiling", f"{inp.ceiling:,.1f} events/s (median of {inp.ingestion['repeats']}; "
         "precomputed vectors, no queue, one 2-core node)", inp.ingestion_src.cite()],
        *([["ingestion, price changes", f"{inp.updates['summary']['sustained_updates_per_s']['median']:.1f} price "
            f"changes/s against {inp.updates['summary']['sustained_events_per_s']['median']:.1f} new products/s, "
            f"the same {workers_started(inp.updates)} workers in one run "
            f"(median of {inp.updates['repeats']} each): **{inp.price_change_speedup:.2f}x**", inp.updates_src.cite()]]
          if inp.updates is not None and inp.updates_src is not None else []),
        ["enqueue-to-searchable", f"p95 {inp.ingestion['summary']['p95_delay_s']:.2f} s at "
         f"{inp.ingestion['rate']:.0f} events/s, refresh interval 1 s (the engine default)", inp.ingestion_src.cite()],
        ["query latency, 12,917 docs, 1 shard", f"BM25 p50 {med['BM25 only']['p50']:.1f} ms; hybrid p50 "
         f"{med[HYBRID]['p50']:.1f} ms = encode {brk[HYBRID]['encode']:.2f} + engine {brk[HYBRID]['engine']:.2f} "
         f"+ client blend {brk[HYBRID]['blend']:.2f} ms (depth 100 per leg)", inp.query_src.cite()],
    ]
    return ("## Measured inputs\n\n"
            "Measured on the project's 2-core CPU VM with one OpenSearch node and one shard, unless the row says "
            "otherwise. Everything after this table is arithmetic on these rows.\n\n"
            + markdown_table(["input", "value", "source"], rows))


def narrowest_breadth(point: Mapping[str, Any]) -> dict[str, Any]:
    """The point's kNN measurement at the narrowest breadth swept (100, the engines' default, unless
    the bench was run with other ``--candidates``)."""
    return min(point["curve"], key=lambda c: c["candidates"])


def widest_breadth(point: Mapping[str, Any]) -> dict[str, Any]:
    """The point's kNN measurement at the widest breadth swept."""
    return max(point["curve"], key=lambda c: c["candidates"])


def scale_curve_section(inp: Inputs) -> str:
    big = inp.largest
    smaller = [p for p in inp.points if p is not big]
    rows = []
    for p in inp.points:
        narrow, wide = narrowest_breadth(p), widest_breadth(p)
        rows.append([p["label"], f"{p['documents']:,}", f"{p['store_bytes']:,}",
                     f"{bytes_per_document(p['store_bytes'], p['documents']):,.0f}", f"{p['bulk_s']:.1f}",
                     f"{p['merge_s']:.1f}", f"{p['bm25_ms']['p50']:.1f}", f"{narrow['hybrid_ms']['p50']:.1f}",
                     f"{narrow['recall_at_10']:.3f}", f"{wide['recall_at_10']:.3f} ({wide['candidates']})"])
    narrow, wide = narrowest_breadth(big), widest_breadth(big)
    return ("### The scale curve these figures rest on\n\n"
            "Bytes per document stay flat from the catalogue to 1,000,000 documents: that is what licenses a linear "
            "extrapolation of disk. Latency and kNN recall do not stay flat, were measured on one shard only, and "
            f"are not extrapolated here. Note the recall at {narrow['candidates']} candidates (the engines' default "
            f"is 100): {min(narrowest_breadth(p)['recall_at_10'] for p in smaller):.3f} or "
            f"better up to {max(p['documents'] for p in smaller):,} vectors, {narrow['recall_at_10']:.3f} at "
            f"{big['documents']:,} (synthetic vectors), and {wide['recall_at_10']:.3f} there with "
            f"{wide['candidates']} candidates (hybrid p50 {narrow['hybrid_ms']['p50']:.1f} -> "
            f"{wide['hybrid_ms']['p50']:.1f} ms). The project widens the search on large indexes "
            "(`query_rewriter/knn_breadth.py`). Before putting 10M vectors in one shard because the size rule allows "
            "it, measure recall at that size with `python -m bench.performance.scale`.\n\n"
            + markdown_table(["point", "documents", "store bytes", "bytes/doc", "bulk+refresh s", "force-merge s",
                              "BM25 p50 ms", "hybrid p50 ms", "kNN recall@10", "recall@10 widest (candidates)"],
                             rows))


def int8_measured(inp: Inputs) -> str:
    """What the scale bench measured for int8 against float vectors at the same size, in one paragraph."""
    pairs = [(f, q) for q in inp.measured("int8") for f in inp.points if f["documents"] == q["documents"]]
    if not pairs:
        return ("**int8, measured:** not in these results (`python -m bench.performance.scale --vectors float,int8` "
                "measures it).\n")
    f, q = max(pairs, key=lambda pair: pair[0]["documents"])
    mib = 1 << 20
    return (f"**int8, measured** (`quantized=True`: OpenSearch's Lucene `sq` encoder, Elasticsearch's `int8_hnsw`; "
            f"{inp.scale_src.cite()}). At {f['documents']:,} documents an HNSW search reads "
            f"{f['searched_bytes'] / mib:,.0f} MiB (graph + float vectors) against "
            f"{q['searched_bytes'] / mib:,.0f} MiB "
            f"with int8, {f['searched_bytes'] / q['searched_bytes']:.1f}x less, while the store grows from "
            f"{f['store_bytes'] / mib:,.0f} to {q['store_bytes'] / mib:,.0f} MiB. But kNN recall@10 falls from "
            f"{narrowest_breadth(f)['recall_at_10']:.3f} to {narrowest_breadth(q)['recall_at_10']:.3f} "
            f"({widest_breadth(q)['recall_at_10']:.3f} at {widest_breadth(q)['candidates']} candidates), so the "
            "project maps float vectors by default.\n")


def memory_section(inp: Inputs, c: Mapping[str, Any]) -> str:
    d, m = c["dimension"], c["m"]
    big = inp.largest
    per_doc, rest = c["store_bytes_per_doc"], c["rest_bytes_per_doc"]
    rows = []
    for label, bits in QUANTIZATIONS:
        mem = c["hnsw_bytes_per_vector"][label]
        formula = (f"1.1 * (4 * {d} + 8 * {m})" if bits == 32 else
                   f"1.1 * ({d} + 8 * {m})" if bits == 8 else f"1.1 * ({d} * {bits} / 8 + 8 * {m})")
        extra = c["quantized_copy_disk_bytes_per_doc"][label]
        disk = (f"{_gb(per_doc * 1e6)} (measured)" if bits == 32 else
                f"({per_doc:,.1f} + {extra:g}) B x 1M = {_gb((per_doc + extra) * 1e6)} ({EXTRA})")
        rows.append([label, f"{formula} = {mem:,.1f} B", f"{_gb(mem * 1e6)} ({EXTRA})", disk])
    float_mem = c["hnsw_bytes_per_vector"][QUANTIZATIONS[0][0]]
    return "\n".join([
        "## 1. Memory and disk per million products\n",
        f"**Disk, measured.** The {big['documents']:,}-document point stored {big['store_bytes']:,} bytes "
        f"(primaries, one segment after force-merge): {big['store_bytes']:,} / {big['documents']:,} = "
        f"**{per_doc:,.1f} B per product**, i.e. **{_gb(per_doc * 1e6)} per million**. Of that, the raw float "
        f"vector is 4 x {d} = {c['raw_float_vector_bytes']:,} B; the other {per_doc:,.1f} - "
        f"{c['raw_float_vector_bytes']:,} = {rest:,.1f} B are graph links, postings, compressed `_source` and doc "
        "values (the text and metadata). The synthetic points repeat the catalogue's titles, so a catalogue with "
        "more varied text has somewhat larger postings; the vector part does not change.\n",
        f"**Memory, from the documented formula** ({SOURCES['hnsw_float'].link()}: "
        f"{SOURCES['hnsw_float'].says}). d = {d} and m = {m} are the measured index's mapping (`INDEX_HNSW`, "
        "`M:EF_CONSTRUCTION`, sets m for new index versions). The project maps `engine: lucene`, whose vectors "
        "and graph are memory-mapped files: this memory must be free for the OS page cache, outside the JVM heap "
        "(faiss would hold it as native memory under the k-NN circuit breaker, by default 50% of the RAM outside "
        "the heap).\n",
        markdown_table(["vectors", "HNSW bytes/vector", "HNSW memory per 1M, one copy", "disk per 1M, one copy"], rows),
        f"Quantized rows: int8 from {SOURCES['hnsw_int8'].link()} ({SOURCES['hnsw_int8'].says}); 1-bit from "
        f"{SOURCES['hnsw_binary'].link()} ({SOURCES['hnsw_binary'].says}). Quantization keeps the float vectors on "
        "disk for rescoring and adds the quantized copy (d x bits / 8 bytes, plus a few bytes of per-vector "
        "corrections not counted here), so disk grows while memory shrinks.\n",
        int8_measured(inp),
        f"**Check against the measurement.** The float estimate, {float_mem:,.1f} B/vector, is "
        f"{float_mem / per_doc:.2f}x the whole measured store per product ({per_doc:,.1f} B, text included): the "
        "formula is a safe upper bound for memory, not a disk size (Lucene stores graph links compressed).\n",
        f"**Memory per million products, vector + text, one copy** ({EXTRA}): HNSW {float_mem:,.1f} B + the rest of "
        f"the index {rest:,.1f} B (measured on disk; page cache for postings and stored fields) = "
        f"{float_mem + rest:,.1f} B x 1M = **{_gb((float_mem + rest) * 1e6)}**, plus the JVM heap. Each replica "
        "needs the same again on another node.\n",
    ])


def shards_section(c: Mapping[str, Any]) -> str:
    per_doc, nodes, replicas = c["store_bytes_per_doc"], c["data_nodes"], c["replicas"]
    targets = [f"{t:g} GB" for t in SHARD_TARGET_GB]
    rows = [[_millions(s["products"]), f"{per_doc:,.1f} B x {s['products']:,} = {_gb(s['primary_bytes'])}",
             *[str(s["shards"][t]) for t in targets], f"**{s['recommended_shards']}**", _gb(s["with_replicas_bytes"])]
            for s in c["sizing"]]
    mem_rows = [[_millions(s["products"]), *[_gb(s["hnsw_per_node_bytes"][label]) for label, _ in QUANTIZATIONS]]
                for s in c["sizing"]]
    float_label, int8_label = QUANTIZATIONS[0][0], QUANTIZATIONS[1][0]
    float_b = c["hnsw_bytes_per_vector"][float_label]
    largest = c["sizing"][-1]
    return "\n".join([
        "## 2. Shards for 1M, 10M and 100M products\n",
        f"Rule of thumb: **10-50 GB per shard** ({SOURCES['shard_size'].link()}: {SOURCES['shard_size'].says}); "
        f"for search-heavy workloads the lower part, 10-30 GB ({SOURCES['shard_size_search'].link()}). "
        "Shards = ceil(primary size / target), at least 1. Recommended here: ceil(size / "
        f"{RECOMMENDED_SHARD_GB:g} GB), rounded up to a multiple of the {nodes} data nodes once more than one shard "
        "is needed, so every node holds as many primaries as the next. Primary size = the measured "
        f"{per_doc:,.1f} B/product x products ({EXTRA} beyond the measured 1M).\n",
        markdown_table(["products", "primary size", *[f"shards at {t}" for t in targets],
                        f"recommended ({nodes} data nodes)", f"disk, primaries + {_replicas(replicas)}"], rows),
        "The 200M-documents-per-shard limit of the same rule never binds here "
        f"({_millions(largest['products'])} / {largest['recommended_shards']} shards = "
        f"{largest['products'] / largest['recommended_shards'] / 1e6:.1f}M documents each).\n",
        f"**HNSW memory per data node**, {nodes} data nodes, {_replicas(replicas)} ({EXTRA}): products x "
        f"bytes/vector x (1 + replicas) / nodes; e.g. float at 10M: 10,000,000 x {float_b:,.1f} x {1 + replicas} / "
        f"{nodes} = {_gb(vector_copies_bytes(10_000_000, float_b, replicas) / nodes)}. Add the JVM heap and page "
        "cache for the rest of the index (section 1) to get RAM per node. Other node counts: "
        "`python -m bench.scaling --data-nodes N --replicas R`.\n",
        markdown_table(["products", *[label for label, _ in QUANTIZATIONS]], mem_rows),
        f"At 100M float vectors each of the {nodes} nodes needs about "
        f"{_gb(largest['hnsw_per_node_bytes'][float_label])} of RAM outside the heap for the vectors and graph "
        f"alone; int8 quantization would bring that to {_gb(largest['hnsw_per_node_bytes'][int8_label])}, at the "
        "recall cost measured in section 1.\n",
    ])


def reembed_section(c: Mapping[str, Any]) -> str:
    r = c["reembed"]
    return "\n".join([
        f"## 3. Workers to re-embed {r['products']:,} products in one hour\n",
        f"Needed rate: {r['products']:,} / {r['seconds']:,.0f} s = **{r['rate_needed']:,.1f} products/s**.\n",
        markdown_table(["worker", "measured rate", "workers = ceil(needed / rate)", "note"], [
            ["2-core CPU machine, ONNX int8", f"{r['cpu_rate_per_2core_machine']:.1f} products/s (measured)",
             f"ceil({r['rate_needed']:,.1f} / {r['cpu_rate_per_2core_machine']:.1f}) = **{r['cpu_machines']}** "
             f"({EXTRA}: linear in machines)", f"{2 * r['cpu_machines']} cores in all"],
            ["one H200 GPU, fp32 title + image", f"{r['gpu_rate']:,.0f} products/s (measured 2026-11-30, see inputs)",
             f"ceil({r['rate_needed']:,.1f} / {r['gpu_rate']:,.0f}) = **{r['gpus']}** ({EXTRA})",
             f"one GPU alone: {r['products']:,} / {r['gpu_rate']:,.0f} = {r['one_gpu_seconds']:,.0f} s = "
             f"{r['one_gpu_seconds'] / 60:.0f} min"],
        ]),
        f"On the GPU the featurizer (tokenising titles, decoding and resizing images) alone tops out at "
        f"{r['featurizer_cap']:,.0f} products/s: a faster model on the same machine cannot pass that without more "
        "featurizing processes. A plain SentenceTransformer on the same GPU encodes "
        f"{GPU_MEASUREMENT['plain_sentence_transformer_titles_per_s']:,.0f} titles/s (text only, not comparable with "
        "the image tower).\n",
        f"**The engine then has to absorb the writes.** One 2-core node bulk-loaded the 1M-document point at "
        f"{r['bulk_docs_per_s_at_largest']:,.0f} docs/s (vectors precomputed; measured), so "
        f"{r['rate_needed']:,.1f} docs/s needs ceil({r['rate_needed']:,.1f} / {r['bulk_docs_per_s_at_largest']:,.0f}) "
        f"= **{r['engine_nodes_for_writes']}** such nodes indexing in parallel ({EXTRA}: assumes the new index's "
        "primaries are spread over them and indexing scales with them), plus the force-merge "
        f"({r['merge_s_at_largest']:.0f} s for {r['documents_at_largest']:,} documents on one node, measured).\n",
        "`reembed` writes a new index version behind the write alias and moves the read alias at the end, so "
        "searches never see the half-built index. It backfills from one process today: spreading a re-embed over "
        "several machines needs the scan of the old index split between them, which is not built yet.\n",
    ])


def ingestion_section(c: Mapping[str, Any]) -> str:
    g = c["ingestion"]
    rows = [[f"{row['events_per_s']:,.0f}", f"ceil({row['events_per_s']:,.0f} / {g['per_worker']:.1f}) = "
             f"**{row['workers']}**", f"{row['events_per_s'] / g['ceiling']:.2f}x",
             f"ceil({row['events_per_s']:,.0f} / {g['ceiling']:,.1f}) = {row['engine_nodes_at_ceiling']}"
             + (" (over one node's ceiling)" if row["over_ceiling"] else "")]
            for row in g["rates"]]
    return "\n".join([
        "## 4. Ingestion workers for a given update rate\n",
        f"Per worker, measured: {g['sustained']:.1f} events/s sustained / {g['workers_measured']} workers = "
        f"**{g['per_worker']:.1f} events/s per worker** (one Celery process, concurrency 1, one encoder thread, "
        "sharing two cores with the engine: a conservative figure; a worker on cores of its own is faster). "
        f"Cap: the engine's bulk ceiling on one 2-core node, **{g['ceiling']:,.1f} events/s** (measured).\n",
        markdown_table(["update rate, events/s", f"workers ({EXTRA})", "rate / one node's bulk ceiling",
                        f"engine nodes at that ceiling ({EXTRA})"], rows),
        "Below one node's ceiling, add workers; above it, more workers only fill the queue: the engine needs more "
        "primaries on more nodes (or a longer `INDEX_REFRESH_INTERVAL`, which makes bulk indexing cheaper at the "
        "cost of freshness). The queue absorbs bursts, so size workers for the sustained rate, not the peak.\n",
        *price_change_lines(g["price_changes"], g["per_worker"]),
    ])


def price_change_lines(p: Mapping[str, Any] | None, per_worker_new: float) -> list[str]:
    """Section 4's sizing for a stream of mostly price changes, which keep their vectors."""
    if p is None:
        return ["The rates above encode every event. Price and stock changes keep their stored vectors and cost a "
                "worker less: `python -m bench.performance.ingestion --updates` measures how much "
                f"(`{UPDATES_RESULTS}` is not in the results, so this guide does not count it).\n"]
    share = p["share"]
    rows = [[f"{row['events_per_s']:,.0f}", f"ceil({row['events_per_s']:,.0f} x ({1 - share:.1f} / "
             f"{per_worker_new:.1f} + {share:.1f} / {p['per_worker']:.1f})) = **{row['workers']}**"]
            for row in p["rates"]]
    return [
        "The rates above encode every event, as new products need. A price or stock change leaves the title, "
        "category and photo alone and keeps its stored vector (`indexer.pipeline`): the same workers sustained "
        f"**{p['speedup']:.2f}x** as many such events in one run (inputs table), so one worker takes "
        f"{per_worker_new:.1f} x {p['speedup']:.2f} = **{p['per_worker']:.1f} price changes/s** ({EXTRA}: the "
        f"ratio applied to the per-worker rate above). With {share:.0%} of the events price changes:\n",
        markdown_table(["update rate, events/s", f"workers ({EXTRA})"], rows),
    ]


def fusion_section(inp: Inputs, c: Mapping[str, Any]) -> str:
    f = c["fusion"]
    depth, budget = f["depth"], f["budget_per_leg"]
    by_shards = {r["shards"]: r for r in f["rows"]}
    rows = [[str(r["shards"]), f"{r['shards']} x {depth} = {r['per_leg']:,}", f"{r['both_legs']:,}",
             f"{r['client_hits']:,}", f"{budget:,} / {r['shards']} = {r['depth_for_budget']:,}"] for r in f["rows"]]
    brk = inp.opensearch_query["breakdown"][HYBRID]
    deepest = f["rows"][-1]
    return "\n".join([
        "## 5. Where the client-side fusion stops scaling\n",
        f"The `hybrid` mode sends both legs in one `_msearch`, each asking for `depth` hits ({depth} by default). "
        "Every shard returns its own top `depth` per leg, because no shard knows the others' scores "
        f"({SOURCES['search_type'].link()}); the coordinating node merges shards x depth per leg, keeps the best "
        "`depth` and fetches their sources. The client always receives 2 x depth hits and blends them: that part "
        "does not grow with shards.\n",
        markdown_table(["shards", "merged per leg at the coordinator", "both legs", "hits sent to the client",
                        f"depth that keeps {budget:,} per leg"], rows),
        f"Measured on one shard (12,917 products): engine {brk['engine']:.2f} ms, client blend {brk['blend']:.2f} ms "
        f"for 2 x {depth} hits. The blend is linear in depth, not in shards ({EXTRA}: about "
        f"{brk['blend'] * 10:.1f} ms at depth 1,000). What grows with shards is server work per query: every shard "
        "runs a top-`depth` BM25 search and a top-`depth` HNSW search (k = depth on each shard), the coordinator "
        "merges shards x depth per leg, and the query waits for the slowest shard. At 50 shards one hybrid query "
        f"merges {deepest['both_legs']:,} candidates and touches every shard twice. Past the point where shards are "
        "needed for size (section 2), more shards add work to every query instead of spreading queries; query "
        "throughput then comes from replicas, not from more shards.\n",
        "What then:\n",
        "- **Fewer, larger shards** (within 10-50 GB, section 2): the same coordinator budget buys a deeper "
        f"window, e.g. {budget:,} per leg is depth {by_shards[20]['depth_for_budget']} on 20 shards or depth "
        f"{by_shards[5]['depth_for_budget']} on 5. A deeper window is what the blend needs as the catalogue grows "
        f"(the top {depth} of each leg is all it can rerank).",
        "- **The server-side hybrid** (`server_hybrid` mode, OpenSearch neural-search): the same per-shard work, "
        "but normalisation and blending happen on the coordinator, and the client receives one list of `depth` "
        "hits instead of two, with no Python blend. It takes the client out of the scaling question; it does not "
        "reduce the shards x depth merge.\n",
        "Neither is measured on several shards here; the two-node section below holds what the cluster run "
        "measures.\n",
    ])


def settings_section(c: Mapping[str, Any]) -> str:
    rec = {s["products"]: s["recommended_shards"] for s in c["sizing"]}
    return "\n".join([
        "## 6. What to set for a cluster\n",
        "New index versions (the first index, every `reembed`) are created with these settings. Replicas and the "
        "refresh interval can also be changed on a live index through the engine's index settings API; the shard "
        "count only by a new version (`reembed`).\n",
        markdown_table(["setting", "single node (default)", "cluster", "why"], [
            ["`INDEX_SHARDS`", "1", f"section 2: {rec[1_000_000]} up to 10M products at this size per product, "
             f"{rec[100_000_000]} for 100M on {c['data_nodes']} data nodes",
             "10-50 GB per shard; each extra shard is one more top-depth search per leg per query"],
            ["`INDEX_REPLICAS`", "0", "1 (2 if a node loss must still leave a spare copy)",
             "a replica survives a node loss and serves searches; it doubles disk and HNSW memory (sections 1-2)"],
            ["`INDEX_REFRESH_INTERVAL`", "1s", "1s for live updates; longer (e.g. 30s) where freshness may lag",
             "the measured enqueue-to-searchable p95 ran with 1 s; longer intervals make bulk indexing cheaper"],
        ]),
        "A production cluster also wants three cluster-manager-eligible nodes, so that losing one still leaves a "
        "quorum (the local test cluster has a single manager, for the reason given in `devstack/config.py`).\n",
        "**When `dfs_query_then_fetch` matters.** BM25's IDF comes from the statistics of the shard that scores the "
        "document. On a small index split over several shards those statistics differ from shard to shard, so the "
        "same product scores differently depending on where it lives, and the BM25 leg's top `depth` (and its "
        "min-max normalisation) moves. `dfs_query_then_fetch` first gathers term statistics from every shard, at "
        f"the cost of one more round trip per query ({SOURCES['search_type'].link()}). Use it while shards are small "
        "(a catalogue of thousands to a few hundred thousand products on more than one shard); with millions of "
        "randomly routed products per shard the statistics come close and the default `query_then_fetch` is "
        "enough. That threshold is a rule of thumb, not measured here. The cluster integration test "
        "(`tests/integration/test_cluster.py`) asks for dfs with `SearchRequest(..., dfs=True)` and checks that the "
        "top 10 on 2 shards then equals the top 10 on 1 shard on its 200 products. The kNN leg uses no collection "
        "statistics, but each shard searches its own approximate graph, so on the full catalogue dfs brings the "
        "hybrid top 10 close to one shard's without making it identical (see the two-node measurements below).\n",
    ])


def cluster_section(cluster: Mapping[str, Any] | None) -> str:
    head = ("## Two-node cluster measurements\n\n"
            "*This section is filled by `python -m bench.cluster`*, which starts a real two-node OpenSearch cluster "
            f"and writes `docs/results/{CLUSTER_RESULTS}`; `{COMMAND}` prints what that file holds.\n")
    if cluster is None:
        return head + "\nNot measured yet.\n"
    if not isinstance(cluster.get("measurements"), list):  # any other shape: every key/value pair as it is
        rows = [[f"`{key}`", _cluster_value(value)] for key, value in flatten(cluster)]
        return head + "\n" + markdown_table(["key", "value"], rows)
    return head + "\n" + cluster_measurements(cluster)


CLUSTER_STAMP = ("machine", "commit", "command", "setup", "measurements", "finding")
"""Keys of a ``bench.cluster`` result that :func:`cluster_measurements` renders as prose or the main table."""


def _cluster_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def cluster_measurements(cluster: Mapping[str, Any]) -> str:
    """A ``bench.cluster`` result: who measured it where, one row per measurement, then the finding."""
    m = cluster.get("machine") or {}
    where = (f"Measured by `{cluster.get('command', '?')}` at commit `{cluster.get('commit', '?')}` on "
             f"{m.get('nproc', '?')} CPU cores ({m.get('cpu') or 'unknown CPU'}), {m.get('memory_gib', '?')} GiB RAM")
    lines = [where + (f": {cluster['setup']}." if cluster.get("setup") else ".") + "\n"]

    def value(row: Mapping[str, Any]) -> str:
        v = row.get("value")
        text = f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else _cluster_value(v)
        return text + (f" {row['unit']}" if row.get("unit") else "")

    rows = [[str(row.get("measure", "")), value(row), str(row.get("note", ""))] for row in cluster["measurements"]]
    lines.append(markdown_table(["measure", "value", "note"], rows))
    if cluster.get("finding"):
        lines.append(f"**Reading the dfs result.** {cluster['finding']}\n")
    rest = [[f"`{key}`", _cluster_value(v)] for key, v in flatten({k: v for k, v in cluster.items()
                                                                  if k not in CLUSTER_STAMP})]
    if rest:
        lines.append(markdown_table(["also recorded", "value"], rest))
    return "\n".join(lines)


def sources_section() -> str:
    lines = ["## Sources\n"]
    lines += [f"- {ref.name}: {ref.says}. <{ref.url}>" for ref in SOURCES.values()]
    lines.append(f"- GPU rates: {GPU_MEASUREMENT['provenance']}.")
    return "\n".join(lines) + "\n"


def render(inp: Inputs, c: Mapping[str, Any]) -> str:
    intro = (
        "\nHow much memory and disk, how many shards and workers a deployment of this project needs, from 1M to "
        "100M products. Every number is either **measured** by the project's benchmarks (the inputs table names "
        "the JSON, commit and command) or computed from those measurements with its formula shown, and then "
        f"labelled {EXTRA}. GB = 10^9 bytes. Regenerate with `{COMMAND}` after a benchmark reruns.\n"
    )
    return "\n".join([
        header("Sizing guide: scaling out hybrid search", COMMAND) + intro,
        inputs_section(inp), scale_curve_section(inp), memory_section(inp, c), shards_section(c),
        reembed_section(c), ingestion_section(c), fusion_section(inp, c), settings_section(c),
        cluster_section(inp.cluster), sources_section(),
    ])


def payload(inp: Inputs, c: Mapping[str, Any]) -> dict[str, Any]:
    """What ``docs/results/scaling.json`` holds: the command, the sources of every input, and the figures."""
    return {
        "command": COMMAND,
        "inputs": {name: asdict(src) for name, src in [("scale", inp.scale_src), ("encoding", inp.encoding_src),
                                                       ("ingestion", inp.ingestion_src), ("query", inp.query_src)]},
        "gpu_measurement": GPU_MEASUREMENT,
        "assumptions": {"shard_target_gb": SHARD_TARGET_GB, "recommended_shard_gb": RECOMMENDED_SHARD_GB,
                        "hnsw_overhead": HNSW_OVERHEAD},
        "references": {key: asdict(ref) for key, ref in SOURCES.items()},
        "figures": c,
        "cluster": inp.cluster,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory of the performance JSON files")
    parser.add_argument("--doc", type=Path, default=DOC, help="Markdown guide to write (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="JSON to write (default: RESULTS/scaling.json)")
    parser.add_argument("--data-nodes", type=int, default=DATA_NODES, help="data nodes (default: %(default)s)")
    parser.add_argument("--replicas", type=int, default=REPLICAS, help="replicas per shard (default: %(default)s)")
    args = parser.parse_args(argv)
    inp = load_inputs(args.results)
    figures = compute(inp, data_nodes=args.data_nodes, replicas=args.replicas)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(inp, figures))
    body = payload(inp, figures)
    if args.json is None and args.results.resolve() == RESULTS.resolve():
        json_path = write_json("scaling", body)  # docs/results/scaling.json, stamped like every report
    else:  # another results directory (a test, a what-if copy): the same stamp, next to its inputs
        json_path = args.json or args.results / "scaling.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        stamped = {"machine": machine(), "commit": commit(), **body}
        json_path.write_text(json.dumps(stamped, indent=2, default=str) + "\n")
    print(f"wrote {args.doc} and {json_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
