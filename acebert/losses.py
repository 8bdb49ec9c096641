"""Training losses: in-batch softmax matching and the adversarial domain loss."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from acebert.model import AceBert

MAX_LOGIT_SCALE = 100.0  # temperature floor 0.01: a learned scale beyond this only overfits


class InBatchContrastive(nn.Module):
    """Softmax over query->product similarities; row ``i``'s target is column ``i``.

    Columns that are known positives of the row's query (duplicates, other pairs of the same
    query, a product relevant to several queries) are masked out instead of being pushed away
    as false negatives. The temperature is fixed or learned (as a log-scale, like CLIP).
    """

    def __init__(self, temperature: float, learnable: bool) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learnable)

    @property
    def temperature(self) -> float:
        return float(1.0 / self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE))

    def forward(self, queries: torch.Tensor, products: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
        """``queries`` ``(B, d)``, ``products`` ``(P >= B, d)``, ``excluded`` bool ``(B, P)``."""
        scale = self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        logits = scale * queries @ products.T
        logits = logits.masked_fill(excluded, float("-inf"))
        targets = torch.arange(queries.shape[0], device=queries.device)
        return F.cross_entropy(logits, targets)


def domain_loss(
    model: AceBert, queries: torch.Tensor, products: torch.Tensor, reversal: float
) -> tuple[torch.Tensor, float]:
    """BCE of the domain classifier (query = 0, product = 1) behind a gradient reversal.

    The classifier always learns to separate the domains; the towers receive the reversed
    gradient scaled by ``reversal`` (0 turns the adversary into a passive probe). Returns the
    loss and the classifier's accuracy on this batch.
    """
    vectors = torch.cat([queries, products])
    labels = torch.cat([queries.new_zeros(len(queries)), products.new_ones(len(products))])
    logits = model.domain_logits(vectors, reversal=reversal)
    accuracy = float(((logits > 0).float() == labels).float().mean())
    return F.binary_cross_entropy_with_logits(logits, labels), accuracy
