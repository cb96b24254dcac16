"""CompRess: match teacher and student similarity distributions over a memory bank."""

from __future__ import annotations

import torch.nn.functional as F

from raykd import distributed as D
from raykd.losses._state import FeatureQueue
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


class _CompRess(DistillLoss):
    """KL(p_teacher || p_student) of similarity distributions over a memory bank of anchors.

    Abbasi Koohpayegani, Tejankar, Pirsiavash, "CompRess: Self-Supervised Learning by
    Compressing Representations", NeurIPS 2020.
    ``p_x = softmax(normalize(x) @ bank.T / temperature)`` for each row; the loss is the KL
    averaged over this worker's rows (the mean over workers equals the single-process loss on
    the global batch). After the loss is computed, the banks are filled FIFO with the gathered
    global batch (detached, L2-normalised); the write pointer wraps around, so ``queue_size``
    need not be a multiple of the global batch. Banks start as seeded random unit vectors and
    are sized at the first call. The banks are only updated in training mode. As in the original
    ITRA code (its ``UNI_DIRECTIONAL`` list), CompRess-1q is uni-directional (the teacher gets no
    gradient) and CompRess-2q is not (the teacher side gets the gradient of the KL as well).
    """

    paper = "Abbasi Koohpayegani et al. 2020, CompRess (NeurIPS, arXiv:2010.14713)"
    uni_directional = True
    needs_gather = True
    two_queues = False

    def __init__(self, queue_size: int = 65536, temperature: float = 0.04, seed: int = 0):
        super().__init__()
        self.temperature = temperature
        self.teacher_queue = FeatureQueue(queue_size, seed)
        if self.two_queues:
            self.student_queue = FeatureQueue(queue_size, seed)

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        if not self.two_queues:
            self._same_dim(teacher, student)
        if self.uni_directional:
            teacher = teacher.detach()
        t, s = F.normalize(teacher, dim=-1), F.normalize(student, dim=-1)
        t_bank = self.teacher_queue.features(t)
        s_bank = self.student_queue.features(s) if self.two_queues else t_bank.to(s.dtype)
        log_p_t = F.log_softmax(t @ t_bank.T / self.temperature, dim=-1)
        log_p_s = F.log_softmax(s @ s_bank.T / self.temperature, dim=-1)
        loss = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()
        if self.training:
            self.teacher_queue.push(D.all_gather_no_grad(t))
            if self.two_queues:
                self.student_queue.push(D.all_gather_no_grad(s))
        return loss


@register_loss("CompRess-1q")
class CompRess1q(_CompRess):
    __doc__ = (
        "One bank of teacher features, used for both distributions (needs equal dims).\n\n    "
        + _CompRess.__doc__
    )


@register_loss("CompRess-2q")
class CompRess2q(_CompRess):
    __doc__ = (
        "Teacher bank for the teacher, student bank for the student (dims may differ).\n\n    "
        + _CompRess.__doc__
    )
    two_queues = True
    uni_directional = False
