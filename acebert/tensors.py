"""Featurizer batches as torch tensors: the torch side of :mod:`acebert.features`.

Featurisation produces numpy so that the ONNX path needs no torch; training and the torch
encoder turn its batches into the arguments of :class:`acebert.model.AceBert`'s towers here.
"""
from __future__ import annotations

import numpy as np
import torch

from acebert.features import ProductBatch, QueryBatch


def _on(device: torch.device | str, *arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(array).to(device) for array in arrays)


def query_tensors(batch: QueryBatch, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """``(input_ids, attention_mask)``: the arguments of ``AceBert.encode_queries``."""
    return _on(device, batch.input_ids, batch.attention_mask)


def product_tensors(batch: ProductBatch, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """``(input_ids, attention_mask, images, has_image)``: the arguments of ``AceBert.encode_products``."""
    return _on(device, batch.input_ids, batch.attention_mask, batch.images, batch.has_image)
