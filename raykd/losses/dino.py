"""DINO: self-distillation with a prototype layer, teacher centering and sharpening."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd import distributed as D
from raykd.losses._functional import soft_cross_entropy
from raykd.losses._state import CosinePrototypes
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


@register_loss("DINO")
class DINO(DistillLoss):
    """Cross-entropy between the centred, sharpened teacher and the student prototype scores.

    Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin, "Emerging Properties in
    Self-Supervised Vision Transformers", ICCV 2021.
    One weight-normalised prototype layer (``CosinePrototypes``, owned by the loss, shared by both
    sides) maps features to ``n_prototypes`` logits. ``q = softmax((proto(teacher) - center) /
    teacher_temperature)`` without gradient; loss = ``-sum(q * log_softmax(proto(student) /
    student_temperature))`` averaged over this worker's rows (mean over workers = global loss).
    After the loss (training mode only), ``center = m * center + (1 - m) * mean(proto(teacher))``
    with the mean all-reduced over the global batch. No teacher-temperature warm-up.
    Needs equal dims. ``dim`` sizes the prototype layer now; None sizes it at the first call.
    """

    paper = "Caron et al. 2021, DINO (ICCV, arXiv:2104.14294)"
    uni_directional = True
    needs_prototypes = True
    needs_gather = True

    def __init__(
        self,
        n_prototypes: int = 65536,
        dim: int | None = None,
        teacher_temperature: float = 0.04,
        student_temperature: float = 0.1,
        center_momentum: float = 0.9,
        seed: int = 0,
    ):
        super().__init__()
        self.teacher_temperature, self.student_temperature = teacher_temperature, student_temperature
        self.center_momentum = center_momentum
        self.prototypes = CosinePrototypes(n_prototypes, dim, seed)
        self.register_buffer("center", torch.zeros(1, n_prototypes))

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        student_logits = self.prototypes(student) / self.student_temperature
        with torch.no_grad():
            teacher_logits = self.prototypes(teacher.detach()).to(student_logits.dtype)
            centred = teacher_logits - self.center.to(teacher_logits)
            q = F.softmax(centred / self.teacher_temperature, dim=-1)
        loss = soft_cross_entropy(student_logits, q)
        if self.training:
            self._update_center(teacher_logits)
        return loss

    @torch.no_grad()
    def _update_center(self, teacher_logits) -> None:
        batch_sum = D.all_reduce_sum(teacher_logits.sum(dim=0, keepdim=True))
        batch_center = batch_sum / (teacher_logits.shape[0] * D.world_size())
        m = self.center_momentum
        self.center.mul_(m).add_(batch_center.to(self.center), alpha=1 - m)
