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
    """VICReg on (by default L2-normalised) features, statistics over the global batch.

    Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning", ICLR 2022.
    With ``normalize`` (default, as in the original ITRA code) each row of ``teacher`` and
    ``student`` is first L2-normalised; ``normalize=False`` uses the raw embeddings as the paper
    does. Then
    ``invariance_weight * MSE(s, t) + variance_weight * (hinge(std_s) + hinge(std_t)) / 2
    + covariance_weight * (cov(s) + cov(t))``, where the std hinge is ``relu(1 - sqrt(var + eps))``
    (unbiased variance of the centred columns) and ``cov(x)`` is the sum of squared off-diagonal
    covariances divided by the dim. Features are gathered with gradient from every worker first,
    so every term (the invariance term too) is the single-process value on the global batch (the
    original computes the statistics on each worker's batch alone). Needs equal dims and a global
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
        normalize: bool = True,
    ):
        super().__init__()
        self.invariance_weight, self.variance_weight = invariance_weight, variance_weight
        self.covariance_weight, self.eps, self.normalize = covariance_weight, eps, normalize

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        if self.normalize:
            teacher, student = F.normalize(teacher, dim=-1), F.normalize(student, dim=-1)
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
