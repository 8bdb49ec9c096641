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

    With ``grade1_weight`` > 0 the loss is graded (grade 2 > grade 1 > the rest), as graded nDCG
    scores a ranking: a grade-1 column stays a negative of the row's target, and each one also
    gets a softmax of its own against the row's non-relevant columns only, so a near miss (right
    type, wrong colour) is not pushed below unrelated products. Without it, grade-1 columns are
    plain negatives.
    """

    def __init__(self, temperature: float, learnable: bool, grade1_weight: float = 0.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learnable)
        self.grade1_weight = grade1_weight

    @property
    def temperature(self) -> float:
        return float(1.0 / self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE))

    def forward(
        self, queries: torch.Tensor, products: torch.Tensor, excluded: torch.Tensor, partial: torch.Tensor
    ) -> torch.Tensor:
        """``queries`` ``(B, d)``, ``products`` ``(P >= B, d)``; ``excluded``, ``partial`` bool ``(B, P)``."""
        scale = self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        logits = scale * queries @ products.T
        targets = torch.arange(queries.shape[0], device=queries.device)
        loss = F.cross_entropy(logits.masked_fill(excluded, float("-inf")), targets)
        if self.grade1_weight > 0:
            loss = loss + self.grade1_weight * grade1_term(logits, excluded, partial)
        return loss


def grade1_term(logits: torch.Tensor, excluded: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
    """Mean over grade-1 cells ``(i, j)`` of ``-log softmax`` of ``j`` among ``j`` and row ``i``'s rest.

    The rest is every column that is neither the row's target, nor a positive, nor grade 1. Rows
    with no rest column give no term (there is nothing to rank a near miss above).
    """
    target = torch.zeros_like(excluded)
    target[:, : logits.shape[0]] = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    rest = ~(excluded | partial | target)
    cells = partial & rest.any(dim=1, keepdim=True)
    if not cells.any():
        return logits.new_zeros(())
    rest_lse = logits.masked_fill(~rest, float("-inf")).logsumexp(dim=1, keepdim=True)
    # -log(e^l / (e^l + sum_rest e^r)) = softplus(lse_rest - l)
    return F.softplus(rest_lse - logits)[cells].mean()


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
