"""Exporting an ACE-BERT checkpoint's towers to ONNX, in fp32 and int8.

``python -m acebert.onnx_export CHECKPOINT_DIR [--out DIR]`` writes, by default into
``CHECKPOINT_DIR/onnx/``:

* ``query.onnx``: ``(input_ids, attention_mask) -> vectors``, the query tower;
* ``product_text.onnx``: ``(input_ids, attention_mask) -> vectors``, the product tower for
  products without an image (title plus the learned "no image" token);
* ``product_image.onnx``: ``(input_ids, attention_mask, images, has_image) -> vectors``, the
  product tower with image tokens (only for models with ``use_image``);
* the same three with an ``-int8`` suffix: dynamic int8 quantisation, per channel;
* ``manifest.json``: the checkpoint's weights version and the files, so a stale export (the
  checkpoint retrained after the export) is refused at load time instead of serving vectors of
  another model.

The names of these files and of the graphs' inputs are :mod:`acebert.onnx_layout`'s, shared
with the encoder that serves them without torch.

Why two product graphs: the tower's forward pass takes a shortcut when no product of the batch
has an image (a one-token tail instead of twenty masked image tokens). A trace records one
branch only, so each branch gets its own graph, and the encoder routes products to the right one.

Why per-channel int8: per-tensor weight scales move MiniLM vectors a lot (cosine to fp32 down to
0.885 on catalogue titles), per-channel ones keep them close (0.98 minimum) at the same speed
(measured in ``../shared/docs/python-stack.md``).

Why 7-bit weights (``reduce_range``): on a CPU with AVX2 but no VNNI, ONNX Runtime multiplies
uint8 activations by int8 weights with an instruction that adds pairs of products into 16 bits and
saturates. With full-range weights a product's vector then depends on the worker's CPU: a tiny
random tower fell to cosine 0.899 against torch on an AVX2-only AMD EPYC (0.99997 with 7 bits).
Weights in [-64, 63] keep every pair sum in range, so each kernel computes the same integers. The
trained default's int8 vectors stay within 0.1 point of fp32 on dev nDCG@10 (docs/performance.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

import acebert.model
from acebert.checkpoint import load_model
from acebert.checkpoint_layout import weights_version
from acebert.model import AceBert
from acebert.onnx_layout import (
    INPUTS,
    INT8_QUANTIZATION,
    MANIFEST,
    ONNX_DIR,
    OUTPUT,
    PRODUCT_IMAGE,
    PRODUCT_TEXT,
    QUERY,
    TEXT_INPUTS,
    graph_file,
)

OPSET = 17


class QueryTower(nn.Module):
    """The query tower alone, with the positional signature ONNX export needs."""

    def __init__(self, model: AceBert) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_queries(input_ids, attention_mask)


class ProductTextTower(nn.Module):
    """The product tower for image-less products: the batch is all "no image" by construction."""

    def __init__(self, model: AceBert) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch = input_ids.shape[0]
        height, width = self.model.config.image_size
        images = torch.zeros((batch, 3, height, width))
        has_image = torch.zeros(batch, dtype=torch.bool)
        return self.model.encode_products(input_ids, attention_mask, images, has_image)


class ProductImageTower(nn.Module):
    """The product tower with image tokens (rows whose ``has_image`` is False get "no image")."""

    def __init__(self, model: AceBert) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: torch.Tensor, has_image: torch.Tensor
    ) -> torch.Tensor:
        return self.model.encode_products(input_ids, attention_mask, images, has_image)


def _example_inputs(model: AceBert, with_images: bool) -> tuple[torch.Tensor, ...]:
    """A two-row batch of seven tokens (one row padded) that traces the general path.

    With images, the first row has one and the second has none, so the traced graph contains
    the per-row "no image" selection rather than either shortcut.
    """
    input_ids = torch.tensor([[101, 2417, 2609, 2005, 2273, 102, 0], [101, 2630, 6293, 2015, 102, 0, 0]])
    attention_mask = (input_ids != 0).long()
    if not with_images:
        return input_ids, attention_mask
    height, width = model.config.image_size
    images = torch.rand((2, 3, height, width)) * 2 - 1
    return input_ids, attention_mask, images, torch.tensor([True, False])


def _dynamic_axes(inputs: Sequence[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {OUTPUT: {0: "batch"}}
    for name in inputs:
        axes[name] = {0: "batch", 1: "sequence"} if name in TEXT_INPUTS else {0: "batch"}
    return axes


@contextmanager
def _traceable_image_mask() -> Iterator[None]:
    """Rebuild the image-token mask without slice assignment while tracing.

    ``acebert.model._image_part`` fills the mask with ``mask[:, 1:] = has_image[:, None]``; a
    trace records that broadcast with the example's batch size as a constant, so the graph would
    refuse any other batch size. The same mask (slot 0 always attended, the other slots only
    with an image) built by broadcasting stays dynamic; the original mask is left unused and
    pruned from the graph. The unit tests compare the exported graphs with torch.
    """
    original = acebert.model._image_part

    def image_part(
        image_tokens: nn.Module, images: torch.Tensor, has_image: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, _ = original(image_tokens, images, has_image, dtype)
        is_first = torch.arange(tokens.shape[1]) == 0
        return tokens, (has_image[:, None].bool() | is_first).long()

    acebert.model._image_part = image_part
    try:
        yield
    finally:
        acebert.model._image_part = original


def export_graph(module: nn.Module, example: tuple[torch.Tensor, ...], inputs: Sequence[str], path: Path) -> Path:
    """Trace ``module`` on ``example`` into ``path`` with dynamic batch and sequence axes."""
    with warnings.catch_warnings(), torch.inference_mode(), _traceable_image_mask():
        # the trace warns about the data-dependent "any image?" branch, resolved on purpose above
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            example,
            str(path),
            input_names=list(inputs),
            output_names=[OUTPUT],
            dynamic_axes=_dynamic_axes(inputs),
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation with per-channel, 7-bit weight scales (activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8)
    return target


def export_checkpoint(checkpoint: Path, out_dir: Path | None = None) -> Path:
    """Export every tower of ``checkpoint`` (fp32 and int8) and write the manifest; returns the directory."""
    checkpoint = Path(checkpoint)
    out_dir = Path(out_dir) if out_dir is not None else checkpoint / ONNX_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    model, _, _ = load_model(checkpoint, "cpu")
    graphs: dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]] = {
        QUERY: (QueryTower(model), _example_inputs(model, False)),
        PRODUCT_TEXT: (ProductTextTower(model), _example_inputs(model, False)),
    }
    if model.config.use_image:
        graphs[PRODUCT_IMAGE] = (ProductImageTower(model), _example_inputs(model, True))
    for name, (module, example) in graphs.items():
        fp32 = export_graph(module, example, INPUTS[name], out_dir / graph_file(name, False))
        quantize(fp32, out_dir / graph_file(name, True))
    manifest = {
        "weights_version": weights_version(checkpoint),
        "opset": OPSET,
        "graphs": sorted(graphs),
        "torch": torch.__version__,
        "quantization": INT8_QUANTIZATION,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m acebert.onnx_export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="ACE-BERT checkpoint directory")
    parser.add_argument("--out", type=Path, default=None, help=f"output directory (default: CHECKPOINT/{ONNX_DIR})")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the export")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = export_checkpoint(args.checkpoint, args.out)
    for path in sorted(out_dir.glob("*.onnx")):
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
