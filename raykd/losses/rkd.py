"""RKD: relational knowledge distillation (distance and angle terms)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


def pairwise_distances(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances [B, B] with an exact zero diagonal (as in the RKD code)."""
    sq = x.pow(2).sum(dim=1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * x @ x.T).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(x.shape[0], dtype=x.dtype, device=x.device))


def _normalised_distances(x: Tensor) -> Tensor:
    d = pairwise_distances(x)
    return d / (d.sum() / (d > 0).sum())  # mean of the positive distances (d >= 0), without a boolean-mask sync


def _angles(x: Tensor) -> Tensor:
    """cos of the angle at each anchor j between (i - j) and (k - j), flattened [B^3]."""
    diff = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


@register_loss("RKD")
class RKD(DistillLoss):
    """Relational KD: match the teacher's pairwise distances and triplet angles (SmoothL1).

    Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019.
    With ``normalize`` (default, as in the original ITRA code) each row of ``teacher`` and
    ``student`` is first L2-normalised (``normalize=False``: raw features, as the paper); then
    distances are normalised by their mean over distinct pairs, and angles are the cosines of all
    triplet angles. Teacher and student dims may differ. Both sides get gradients. Relations
    are within this worker's batch (no communication).
    ``loss = distance_weight * L_dist + angle_weight * L_angle``. Costs O(B^3 D) memory for the
    angle term.
    """

    paper = "Park et al. 2019, Relational Knowledge Distillation (CVPR)"

    def __init__(self, distance_weight: float = 0.5, angle_weight: float = 1.0, normalize: bool = True):
        super().__init__()
        self.distance_weight, self.angle_weight, self.normalize = distance_weight, angle_weight, normalize

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        if self.normalize:
            teacher, student = F.normalize(teacher, dim=-1), F.normalize(student, dim=-1)
        loss_d = F.smooth_l1_loss(_normalised_distances(student), _normalised_distances(teacher))
        loss_a = F.smooth_l1_loss(_angles(student), _angles(teacher))
        return self.distance_weight * loss_d + self.angle_weight * loss_a
