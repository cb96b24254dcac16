"""SigLIP: pairwise sigmoid loss with a learnable scale and bias owned by the loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from raykd import distributed as D
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


@register_loss("SigLIP")
class SigLIP(DistillLoss):
    """Sigmoid loss over all student-teacher pairs of the global batch.

    Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image Pre-Training", ICCV 2023.
    Each worker scores its local (L2-normalised) student rows against the teacher features of
    every worker (gathered with gradient): label +1 on the diagonal of its own block, -1
    elsewhere; ``-sum(logsigmoid(label * (exp(t) * s @ t.T + b))) / B_local``. This equals
    ``open_clip.loss.SigLipLoss`` (any ``dist_impl``) with ``image_features=student``.
    The loss owns ``logit_scale`` (log-space, init log 10) and ``logit_bias`` (init -10); their
    gradients are averaged over workers. The model's ``logit_scale`` argument is ignored.
    """

    paper = "Zhai et al. 2023, SigLIP (ICCV, arXiv:2303.15343)"
    needs_gather = True

    def __init__(self, init_logit_scale: float = math.log(10.0), init_logit_bias: float = -10.0):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)))

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        s = F.normalize(student, dim=-1)
        t = D.all_gather_with_grad(F.normalize(teacher, dim=-1))
        scale = D.sync_grad(self.logit_scale).exp()
        logits = scale * s @ t.T + D.sync_grad(self.logit_bias)
        b, start = s.shape[0], D.rank() * s.shape[0]
        signs = -torch.ones_like(logits)
        signs[:, start : start + b] += 2 * torch.eye(b, dtype=logits.dtype, device=logits.device)
        return -F.logsigmoid(signs * logits).sum() / b
