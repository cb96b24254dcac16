"""SEED: self-supervised distillation with a queue of teacher features."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd import distributed as D
from raykd.losses._functional import soft_cross_entropy
from raykd.losses._state import FeatureQueue
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


@register_loss("SEED")
class SEED(DistillLoss):
    """Soft cross-entropy between teacher and student similarities to [own teacher; queue].

    Fang, Wang, Wang, Zhang, Yang, Liu, "SEED: Self-supervised Distillation For Visual
    Representation", ICLR 2021. For each row the candidates are its own teacher feature and a
    FIFO queue of teacher features: ``logits_s = [s.t, s @ Q.T] / student_temperature``,
    ``logits_t = [t.t, t @ Q.T] / teacher_temperature``, loss =
    ``-sum(softmax(logits_t) * log_softmax(logits_s))`` averaged over this worker's rows.
    The queue is filled FIFO with the gathered global teacher batch (detached, normalised)
    after the loss; the pointer wraps around, so ``queue_size`` need not divide by the global
    batch. Starts as seeded random unit vectors; only updated in training mode. Needs equal dims;
    the teacher gets no gradient.
    """

    paper = "Fang et al. 2021, SEED (ICLR, arXiv:2101.04731)"
    uni_directional = True
    needs_gather = True

    def __init__(
        self,
        queue_size: int = 65536,
        student_temperature: float = 0.07,
        teacher_temperature: float = 1e-4,
        seed: int = 0,
    ):
        super().__init__()
        self.student_temperature, self.teacher_temperature = student_temperature, teacher_temperature
        self.queue = FeatureQueue(queue_size, seed)

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        t, s = F.normalize(teacher.detach(), dim=-1), F.normalize(student, dim=-1)
        bank = self.queue.features(t)
        logits_t = torch.cat([(t * t).sum(-1, keepdim=True), t @ bank.T], dim=1)
        logits_s = torch.cat([(s * t.to(s.dtype)).sum(-1, keepdim=True), s @ bank.to(s.dtype).T], dim=1)
        targets = F.softmax(logits_t / self.teacher_temperature, dim=-1).to(s.dtype)
        loss = soft_cross_entropy(logits_s / self.student_temperature, targets)
        if self.training:
            self.queue.push(D.all_gather_no_grad(t))
        return loss
