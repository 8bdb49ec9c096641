"""What the four performance benchmarks share: arguments, data, encoders, cached vectors, output.

Every command takes the same core arguments (``--catalog``, ``--queries``, ``--encoder``,
``--tiny``, ``--repeats``), so ``python -m bench.performance`` can pass one set to all four.
``--tiny`` is a seconds-long smoke configuration for CI: it proves the command still works and
writes its report to a temporary directory, never over the real results.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT, TrainConfig
from acebert.data import load_catalog, load_queries
from acebert.encoder import Encoder
from acebert.loading import SPEC_FORMS, load_encoder
from bench.performance.doc import DOC, write_section
from bench.report import RESULTS, commit, header, machine
from devstack.install import cache_root
from es_mappings import HnswGraph

DEFAULT_CATALOG = (REPO_ROOT / DEFAULT_DATA_DIR).resolve()
DEFAULT_CHECKPOINT = TrainConfig().output_path
TINY_PRODUCTS = 300
TINY_QUERIES = 20
TINY_OUTPUT = Path(tempfile.gettempdir()) / "acebert-perf-tiny"
ENCODE_BATCH = 64


def default_encoder() -> str:
    """The trained checkpoint's int8 ONNX towers when a checkpoint exists, else the MiniLM baseline."""
    return f"onnx-int8:{DEFAULT_CHECKPOINT}" if (DEFAULT_CHECKPOINT / "config.json").is_file() else "minilm"


def add_common_args(parser: argparse.ArgumentParser, repeats: int) -> None:
    """The arguments every performance command takes."""
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="directory with products.csv (and images/)")
    parser.add_argument("--queries", type=Path, default=None, help="queries TSV (default: CATALOG/queries_test.tsv)")
    parser.add_argument(
        "--encoder", default=default_encoder(),
        help=f"{SPEC_FORMS} (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=repeats, help="repeated runs (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run; report goes to a temp dir")
    parser.add_argument("--results", type=Path, default=None, help=f"JSON directory (default: {RESULTS})")
    parser.add_argument("--doc", type=Path, default=None, help=f"Markdown report (default: {DOC})")
    parser.add_argument("--variant", default=None, metavar="NAME",
                        help="a second configuration measured next to the default one (e.g. title-only): writes "
                             "performance-<target>-NAME.json and its own section instead of replacing the target's")


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on other arguments (query file, tiny outputs, repeats)."""
    args.queries = args.queries or args.catalog / "queries_test.tsv"
    if args.tiny:
        args.repeats = 1
    args.results = args.results or (TINY_OUTPUT if args.tiny else RESULTS)
    args.doc = args.doc or (TINY_OUTPUT / "performance.md" if args.tiny else DOC)
    return args


def parse_graphs(parser: argparse.ArgumentParser, option: str, text: str) -> list[HnswGraph]:
    """``M:EF_CONSTRUCTION[,M:EF_CONSTRUCTION...]`` of ``option`` as graphs, or the parser's usage error."""
    try:
        return [HnswGraph.parse(graph) for graph in text.split(",") if graph]
    except ValueError as error:
        parser.error(f"{option}: {error}")


# --- data -----------------------------------------------------------------------------------
def load_inputs(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The catalogue and the queries, cut down for ``--tiny``."""
    catalog = load_catalog(args.catalog)
    queries = load_queries(args.queries)
    if args.tiny:
        catalog = catalog.sample(min(TINY_PRODUCTS, len(catalog)), random_state=0).reset_index(drop=True)
        queries = queries.head(TINY_QUERIES).reset_index(drop=True)
    return catalog, queries


def catalogue_events(catalog_dir: Path, catalog: pd.DataFrame, id_prefix: str = "") -> list[dict[str, Any]]:
    """The upsert events of ``catalog``'s rows (as the producer would send them), ids prefixed.

    A prefix lets one index receive the same products again as new documents, so each run of a
    benchmark measures fresh writes rather than version conflicts.
    """
    from indexer.catalog import catalog_events

    by_id = {event["product_id"]: event for event in catalog_events(catalog_dir)}
    return [{**by_id[pid], "product_id": f"{id_prefix}{pid}"} for pid in catalog["product_id"]]


def price_update(event: Mapping[str, Any]) -> dict[str, Any]:
    """The next version of ``event`` with only its price changed: nothing the product tower reads.

    The commonest event of a live catalogue; the write path keeps such a product's stored vector.
    """
    return {**event, "version": event["version"] + 1, "price": round(float(event.get("price") or 20.0) * 0.9, 2)}


def documents(
    events: Sequence[Mapping[str, Any]], vectors: np.ndarray, model_version: str, image_root: Path
) -> list[dict[str, Any]]:
    """The stored documents for ``events`` with their precomputed vectors (what a worker would write)."""
    from es_mappings import VECTOR_FIELD
    from indexer.documents import build_document, encoder_input, input_digest
    from indexer.events import ProductUpsert, parse_event

    docs = []
    for event, vector in zip(events, vectors, strict=True):
        upsert = parse_event(event)
        assert isinstance(upsert, ProductUpsert)
        doc = build_document(upsert, model_version=model_version, has_image=upsert.image is not None,
                             encoded_input=input_digest(encoder_input(upsert, image_root)))
        doc[VECTOR_FIELD] = vector.tolist()
        docs.append(doc)
    return docs


def bulk_actions(docs: Iterable[Mapping[str, Any]], index: str) -> Iterator[dict[str, Any]]:
    """Index actions with external versions, the same writes ``indexer.pipeline`` sends."""
    for doc in docs:
        yield {"_op_type": "index", "_index": index, "_id": doc["product_id"], "version": doc["event_version"],
               "version_type": "external", "_source": doc}


# --- encoders -------------------------------------------------------------------------------
def checkpoint_of(spec: str) -> Path | None:
    """The ACE-BERT checkpoint directory behind an encoder spec (None for ``minilm``)."""
    if spec in ("", "minilm"):
        return None
    from acebert.loading import is_onnx_spec, parse_spec

    return parse_spec(spec)[0] if is_onnx_spec(spec) else Path(spec).expanduser()


def encoder_variants(spec: str) -> dict[str, str]:
    """Label -> spec of every runtime of the model behind ``spec`` (torch, ONNX fp32, ONNX int8)."""
    checkpoint = checkpoint_of(spec)
    if checkpoint is None:
        return {"MiniLM (sentence-transformers)": "minilm"}
    return {"torch fp32": str(checkpoint), "ONNX fp32": f"onnx:{checkpoint}", "ONNX int8": f"onnx-int8:{checkpoint}"}


def variant_label(spec: str) -> str:
    """The label :func:`encoder_variants` gives ``spec`` itself (e.g. ``ONNX int8``)."""
    from acebert.loading import is_onnx_spec

    checkpoint = checkpoint_of(spec)
    if checkpoint is None:
        canonical = "minilm"
    elif is_onnx_spec(spec):
        canonical = f"{spec.partition(':')[0]}:{checkpoint}"
    else:
        canonical = str(checkpoint)
    return next(label for label, variant in encoder_variants(spec).items() if variant == canonical)


def prepare_encoder(spec: str, threads: int | None = None) -> Encoder:
    """``load_encoder(spec, threads)``, exporting the checkpoint to ONNX first when the spec needs it."""
    from acebert.loading import is_onnx_spec

    checkpoint = checkpoint_of(spec)
    if checkpoint is not None and is_onnx_spec(spec):
        from acebert.onnx_export import export_checkpoint
        from acebert.onnx_layout import export_is_current

        if not export_is_current(checkpoint):
            print(f"exporting {checkpoint} to ONNX", flush=True)
            export_checkpoint(checkpoint)
    return load_encoder(spec, threads)


def catalogue_vectors(encoder: Encoder, catalog: pd.DataFrame) -> np.ndarray:
    """Product vectors of ``catalog`` by ``encoder``, cached on disk by model version and content.

    The query, ingestion-ceiling and scale benchmarks need the same vectors precomputed;
    encoding the catalogue costs minutes on two cores, so it is done once per model.
    """
    from acebert.data import catalog_inputs

    digest = hashlib.sha256(pd.util.hash_pandas_object(catalog, index=False).values.tobytes()).hexdigest()[:16]
    path = cache_root() / "bench" / "vectors" / f"{encoder.model_version}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    print(f"encoding {len(catalog)} products with {encoder.model_version} (cached in {path})", flush=True)
    vectors = encoder.encode_products(catalog_inputs(catalog), ENCODE_BATCH)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


# --- output ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """When and how a benchmark ran, and how busy the shared machine was meanwhile."""

    command: str
    started: float
    load_before: tuple[float, float, float]

    @classmethod
    def now(cls, module: str, argv: Sequence[str] | None) -> "RunInfo":
        words = list(argv) if argv is not None else sys.argv[1:]
        return cls(f"python -m {module} {shlex.join(words)}".strip(), time.time(), os.getloadavg())

    def as_dict(self) -> dict[str, Any]:
        return {"command": self.command, "seconds": round(time.time() - self.started, 1),
                "load_average_before": self.load_before, "load_average_after": os.getloadavg()}


def section_header(title: str, info: RunInfo) -> str:
    """``## title`` plus the line naming the command, commit, machine and load."""
    load = ", ".join(f"{value:.1f}" for value in info.load_before)
    return f"#{header(title, info.command)}Load average (1/5/15 min) when it started: {load}.\n"


def write_outputs(args: argparse.Namespace, name: str, payload: dict[str, Any], markdown: str) -> Path:
    """Write ``performance-<name>.json`` and section ``name`` of the Markdown report; returns the JSON.

    With ``--variant``, both are named ``<name>-<variant>`` and the section's heading says which.
    """
    if args.variant:
        name = f"{name}-{args.variant}"
        heading, _, body = markdown.partition("\n")
        markdown = f"{heading} ({args.variant})\n{body}"
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"performance-{name}.json"
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), **payload}, indent=2, default=str) + "\n")
    write_section(name, markdown, args.doc)
    print(f"wrote {path} and section {name!r} of {args.doc}", flush=True)
    return path
