"""Building the encoder an encoder spec names: the one place that picks an implementation.

A spec is ``minilm`` (the baseline), ``onnx:CHECKPOINT`` / ``onnx-int8:CHECKPOINT`` (the
checkpoint's ONNX export, served without torch) or an ACE-BERT checkpoint directory (torch).
The caller passes the spec (the composition root takes it from its settings): nothing here
reads the environment. Each implementation is imported only when its spec asks for it, so
loading an ONNX encoder never imports torch.
"""
from __future__ import annotations

from pathlib import Path

from acebert.encoder import Encoder

MINILM = "minilm"
FP32_PREFIX, INT8_PREFIX = "onnx", "onnx-int8"
# The forms a spec takes, for errors that ask for one.
SPEC_FORMS = f"{MINILM}, {INT8_PREFIX}:CHECKPOINT, {FP32_PREFIX}:CHECKPOINT or a checkpoint directory"


def is_onnx_spec(spec: str) -> bool:
    """Whether an encoder spec names ONNX graphs (``onnx:PATH`` or ``onnx-int8:PATH``)."""
    return spec.startswith((f"{FP32_PREFIX}:", f"{INT8_PREFIX}:"))


def parse_spec(spec: str) -> tuple[Path, bool]:
    """``(checkpoint dir, int8?)`` from an encoder spec ``onnx:PATH`` or ``onnx-int8:PATH``."""
    prefix, sep, path = spec.partition(":")
    if not sep or not path or prefix not in (FP32_PREFIX, INT8_PREFIX):
        raise ValueError(f"not an ONNX encoder spec: {spec!r}; expected {FP32_PREFIX}:PATH or {INT8_PREFIX}:PATH")
    return Path(path).expanduser(), prefix == INT8_PREFIX


def absolute_spec(spec: str) -> str:
    """``spec`` with its path made absolute, so that any process on this machine can load it:
    an index records the spec of its model (``indexer.models``), and workers and the API load it
    from their own working directories."""
    if spec == MINILM:
        return spec
    if is_onnx_spec(spec):
        prefix, _, path = spec.partition(":")
        return f"{prefix}:{Path(path).expanduser().resolve()}"
    return str(Path(spec).expanduser().resolve())


def _torch_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (process-wide) when asked; ``None`` keeps torch's default."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def load_encoder(spec: str, threads: int | None = None) -> Encoder:
    """The encoder named by ``spec``.

    ``threads`` sizes the encoder for its process (e.g. one per worker process on a small
    machine): torch's intra-op threads for MiniLM and checkpoints, the batches in flight for
    ONNX (each on one thread, see :class:`acebert.onnx_encoder.OnnxAceBertEncoder`). ``None``
    keeps each library's default.
    """
    if spec == MINILM:
        from acebert.minilm import MiniLMEncoder

        _torch_threads(threads)
        return MiniLMEncoder()
    if is_onnx_spec(spec):
        from acebert.onnx_encoder import load_onnx_encoder

        return load_onnx_encoder(*parse_spec(spec), threads=threads)
    from acebert.checkpoint import load_checkpoint_encoder

    _torch_threads(threads)
    return load_checkpoint_encoder(Path(spec))


def blend_weights(spec: str) -> dict[str, float] | None:
    """The hybrid weights stored with the model ``spec`` names (``blend.json``, written by
    ``hybrid-search train``: :mod:`acebert.blend_choice`); None for MiniLM or a model without one."""
    from acebert.blend_choice import read_blend

    if spec == MINILM:
        return None
    checkpoint = parse_spec(spec)[0] if is_onnx_spec(spec) else Path(spec)
    return read_blend(checkpoint.expanduser())
