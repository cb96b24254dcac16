"""VICReg: variance-invariance-covariance regularisation between the two towers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from raykd import distributed as D
from raykd.losses._functional import off_diagonal
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


def _variance(x: Tensor, eps: float) -> Tensor:
    std = torch.sqrt(x.var(dim=0) + eps)
    return F.relu(1 - std).mean()


def _covariance(x: Tensor) -> Tensor:
    cov = (x.T @ x) / (x.shape[0] - 1)
    return off_diagonal(cov).pow(2).sum() / x.shape[1]


@register_loss("VICReg")
class VICReg(DistillLoss):
    """VICReg on unnormalised features, statistics over the global batch.

    Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning", ICLR 2022.
    ``invariance_weight * MSE(student, teacher) + variance_weight * (hinge(std_s) + hinge(std_t)) / 2
    + covariance_weight * (cov(s) + cov(t))``, where the std hinge is ``relu(1 - sqrt(var + eps))``.
    Features are gathered with gradient from every worker first, so every term (the invariance
    term too) is the single-process value on the global batch. Needs equal dims and a global
    batch of at least 2.
    """

    paper = "Bardes et al. 2022, VICReg (ICLR, arXiv:2105.04906)"
    needs_gather = True

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        eps: float = 1e-4,
    ):
        super().__init__()
        self.invariance_weight, self.variance_weight = invariance_weight, variance_weight
        self.covariance_weight, self.eps = covariance_weight, eps

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        t, s = D.all_gather_with_grad(teacher), D.all_gather_with_grad(student)
        invariance = F.mse_loss(s, t)
        t, s = t - t.mean(dim=0), s - s.mean(dim=0)
        variance = (_variance(s, self.eps) + _variance(t, self.eps)) / 2
        covariance = _covariance(s) + _covariance(t)
        return (
            self.invariance_weight * invariance
            + self.variance_weight * variance
            + self.covariance_weight * covariance
        )
