"""Barlow Twins: redundancy reduction on the cross-correlation of the two towers."""

from __future__ import annotations

import torch
from torch import Tensor

from raykd import distributed as D
from raykd.losses._functional import off_diagonal
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


def _batch_norm(x: Tensor, eps: float) -> Tensor:
    """BatchNorm1d(affine=False) in training mode: biased variance."""
    return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + eps)


@register_loss("BarlowTwins")
class BarlowTwins(DistillLoss):
    """Barlow Twins: push the cross-correlation of batch-normalised features to the identity.

    Zbontar, Jing, Misra, LeCun, Deny, "Barlow Twins: Self-Supervised Learning via Redundancy
    Reduction", ICML 2021. ``c = bn(s).T @ bn(t) / N`` over the global batch of N rows
    (features gathered with gradient, so batch norm uses global statistics and ``c`` is the sum
    of the workers' contributions, as the original's SyncBatchNorm + all_reduce);
    ``loss = sum_i (1 - c_ii)^2 + lambd * sum_{i != j} c_ij^2``. Needs equal dims.
    """

    paper = "Zbontar et al. 2021, Barlow Twins (ICML, arXiv:2103.03230)"
    needs_gather = True

    def __init__(self, lambd: float = 0.0051, eps: float = 1e-5):
        super().__init__()
        self.lambd, self.eps = lambd, eps

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        t, s = D.all_gather_with_grad(teacher), D.all_gather_with_grad(student)
        c = _batch_norm(s, self.eps).T @ _batch_norm(t, self.eps) / s.shape[0]
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        return on_diag + self.lambd * off_diagonal(c).pow(2).sum()
