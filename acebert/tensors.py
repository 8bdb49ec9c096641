"""Featurizer batches as torch tensors: the torch side of :mod:`acebert.features`.

Featurisation produces numpy so that the ONNX path needs no torch; training and the torch
encoder turn its batches into the arguments of :class:`acebert.model.AceBert`'s towers here.

Two steps, so that the encoder can run the first on a featurising thread and the second on the
thread that drives the GPU: :func:`host_tensors` (CPU tensors, optionally in pinned memory) and
:func:`to_device`.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Sequence

import torch

from acebert.features import ProductBatch, QueryBatch


def host_tensors(batch: QueryBatch | ProductBatch, pin: bool = False) -> tuple[torch.Tensor, ...]:
    """The batch's arrays as CPU tensors, in field order, which is the order of the tower's arguments.

    Without ``pin`` they share the arrays' memory. ``pin`` copies them into page-locked memory,
    from which a copy to a CUDA device runs asynchronously (:func:`to_device`); the copy costs
    CPU time, so it belongs on a featurising thread, not on the one that feeds the GPU.
    """
    tensors = tuple(torch.from_numpy(getattr(batch, field.name)) for field in fields(batch))
    return tuple(tensor.pin_memory() for tensor in tensors) if pin else tensors


def to_device(tensors: Sequence[torch.Tensor], device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """``tensors`` on ``device``: pinned ones copy without blocking the host, the others as usual.

    Non-blocking only from pinned memory: that is where it overlaps anything, and the caching
    host allocator keeps a pinned block alive until its copy is done.
    """
    return tuple(tensor.to(device, non_blocking=tensor.is_pinned()) for tensor in tensors)


def device_tensors(batch: QueryBatch | ProductBatch, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """The arguments of the batch's tower on ``device``: ``(input_ids, attention_mask)`` for
    ``AceBert.encode_queries``, plus ``images, has_image`` for ``AceBert.encode_products``."""
    return to_device(host_tensors(batch), device)
