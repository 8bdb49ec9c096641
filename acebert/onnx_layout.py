"""The layout of a checkpoint's ONNX export: graph files, their inputs and output, the manifest.

The exporter (:mod:`acebert.onnx_export`, torch) writes this layout and the encoder
(:mod:`acebert.onnx_encoder`, no torch) reads it; both take it from here, so serving an export
never imports the exporter.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acebert.checkpoint_layout import weights_version

ONNX_DIR = "onnx"  # inside the checkpoint directory
MANIFEST = "manifest.json"
INT8_SUFFIX = "-int8"
QUERY, PRODUCT_TEXT, PRODUCT_IMAGE = "query", "product_text", "product_image"
TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_INPUTS = (*TEXT_INPUTS, "images", "has_image")
# Graph -> its inputs, named as the fields of acebert.features' batches
INPUTS: dict[str, tuple[str, ...]] = {QUERY: TEXT_INPUTS, PRODUCT_TEXT: TEXT_INPUTS, PRODUCT_IMAGE: IMAGE_INPUTS}
OUTPUT = "vectors"
# How the int8 graphs were made, as the manifest records it; exports made before 7-bit weights
# (``acebert.onnx_export``: full-range weights saturate on AVX2 CPUs without VNNI) say otherwise.
INT8_QUANTIZATION = "onnxruntime quantize_dynamic, QInt8 weights, per channel, reduce_range (7-bit)"
# What int8 graphs append to the checkpoint's model_version: their vectors differ from fp32's (cosine to
# fp32 about 0.994), and 7-bit from the older full-range ones (about 0.997), so an index tells them apart.
INT8_VERSION_SUFFIX, FULL_RANGE_INT8_VERSION_SUFFIX = "-onnx-int8-w7", "-onnx-int8"


def graph_file(name: str, int8: bool) -> str:
    """The file name of one exported graph."""
    return f"{name}{INT8_SUFFIX if int8 else ''}.onnx"


def read_manifest(onnx_dir: Path) -> dict[str, Any]:
    """The manifest of an export directory; ``FileNotFoundError`` says how to create one."""
    path = Path(onnx_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no ONNX export in {onnx_dir}: run `python -m acebert.onnx_export {Path(onnx_dir).parent}`"
        )
    return json.loads(path.read_text())


def quantised_as_now(manifest: dict[str, Any]) -> bool:
    """Whether an export's int8 graphs were made as :mod:`acebert.onnx_export` makes them today."""
    return manifest.get("quantization") == INT8_QUANTIZATION


def int8_version_suffix(manifest: dict[str, Any]) -> str:
    """The ``model_version`` suffix of an export's int8 graphs, by how they were quantised."""
    return INT8_VERSION_SUFFIX if quantised_as_now(manifest) else FULL_RANGE_INT8_VERSION_SUFFIX


def export_is_current(checkpoint: Path) -> bool:
    """Whether ``CHECKPOINT/onnx`` holds an export of the checkpoint's current weights, quantised as now."""
    try:
        manifest = read_manifest(Path(checkpoint) / ONNX_DIR)
    except FileNotFoundError:
        return False
    return manifest["weights_version"] == weights_version(checkpoint) and quantised_as_now(manifest)
