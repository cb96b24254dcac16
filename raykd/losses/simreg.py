"""SimReg: regression between L2-normalised student and teacher features."""

from __future__ import annotations

import torch.nn.functional as F

from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss

_PAPER = "Navaneet et al. 2022, SimReg (BMVC, arXiv:2201.05131)"


class _Regression(DistillLoss):
    """Element-wise regression (mean over batch and dims) between L2-normalised features.

    Navaneet, Abbasi Koohpayegani, Tejankar, Pirsiavash, "SimReg: Regression as a Simple Yet
    Effective Tool for Self-supervised Knowledge Distillation", BMVC 2021.
    Inputs ``teacher`` and ``student`` [B, D] must have the same D (ValueError otherwise).
    """

    paper = _PAPER

    def distance(self, teacher, student):
        raise NotImplementedError

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        return self.distance(F.normalize(teacher, dim=-1), F.normalize(student, dim=-1))


@register_loss("SimReg")
class SimReg(_Regression):
    __doc__ = "MSE variant. " + _Regression.__doc__

    def distance(self, teacher, student):
        return F.mse_loss(student, teacher)


@register_loss("SimReg-L1")
class SimRegL1(_Regression):
    __doc__ = "L1 variant. " + _Regression.__doc__

    def distance(self, teacher, student):
        return F.l1_loss(student, teacher)


@register_loss("SimReg-SmoothL1")
class SimRegSmoothL1(_Regression):
    __doc__ = "SmoothL1 (Huber with threshold ``beta``) variant. " + _Regression.__doc__

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def distance(self, teacher, student):
        return F.smooth_l1_loss(student, teacher, beta=self.beta)
