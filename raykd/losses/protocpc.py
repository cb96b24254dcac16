"""ProtoCPC: prototypical contrastive predictive coding with a prototype prior."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd import distributed as D
from raykd.losses._state import CosinePrototypes
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


@register_loss("ProtoCPC")
class ProtoCPC(DistillLoss):
    """Prototypical CPC: DINO-style prototype assignment scored against a learned prior.

    Lee, Lee, Shin, "Prototypical Contrastive Predictive Coding", ICLR 2022.
    With ``s = proto(student) / student_temperature`` and
    ``q = softmax(proto(teacher) / teacher_temperature)`` (no gradient), the per-row loss is
    ``-sum_k q_k * log(exp(s_k) / sum_j prior_j * exp(s_j))
    = -sum_k q_k s_k + logsumexp(s + log prior)``, averaged over this worker's rows.
    After the loss (training mode only), ``prior = m * prior + (1 - m) * K * mean(q)`` with the mean
    all-reduced over the global batch. As in the authors' code the prior is scaled to sum to K
    (it starts as all ones), so with a uniform prior the loss equals DINO's cross-entropy without
    centering. The prototype layer is as in DINO (owned by the loss, shared by both sides).
    Needs equal dims.
    """

    paper = "Lee et al. 2022, Prototypical Contrastive Predictive Coding (ICLR)"
    uni_directional = True
    needs_prototypes = True
    needs_gather = True

    def __init__(
        self,
        n_prototypes: int = 65536,
        dim: int | None = None,
        teacher_temperature: float = 0.04,
        student_temperature: float = 0.1,
        prior_momentum: float = 0.9,
        seed: int = 0,
    ):
        super().__init__()
        self.teacher_temperature, self.student_temperature = teacher_temperature, student_temperature
        self.prior_momentum = prior_momentum
        self.prototypes = CosinePrototypes(n_prototypes, dim, seed)
        self.register_buffer("prior", torch.ones(1, n_prototypes))

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        s = self.prototypes(student) / self.student_temperature
        with torch.no_grad():
            q = F.softmax(self.prototypes(teacher.detach()).to(s.dtype) / self.teacher_temperature, dim=-1)
        log_prior = self.prior.to(s).log()
        loss = (-(q * s).sum(dim=-1) + torch.logsumexp(s + log_prior, dim=-1)).mean()
        if self.training:
            self._update_prior(q)
        return loss

    @torch.no_grad()
    def _update_prior(self, q) -> None:
        batch_prior = D.all_reduce_sum(q.sum(dim=0, keepdim=True)) * q.shape[1] / (q.shape[0] * D.world_size())
        m = self.prior_momentum
        self.prior.mul_(m).add_(batch_prior.to(self.prior), alpha=1 - m)
