"""InfoNCE / CLIP contrastive loss with open_clip's four distributed modes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from raykd import distributed as D
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


def gather_features(x: Tensor, with_grad: bool, keep_local_grad: bool) -> Tensor:
    """Gather ``x`` [B, D] over ranks -> [world_size * B, D] as open_clip's ``gather_features``.

    ``with_grad``: gradients flow to every rank's input. Otherwise the gathered copy is detached
    and, if ``keep_local_grad``, this rank's block is replaced by ``x`` itself (with its grad).
    """
    if with_grad:
        return D.all_gather_with_grad(x)
    gathered = D.all_gather_no_grad(x)
    if not keep_local_grad:
        return gathered
    blocks = list(gathered.chunk(D.world_size(), dim=0))
    blocks[D.rank()] = x
    return torch.cat(blocks, dim=0)


@register_loss("InfoNCE")
class InfoNCE(DistillLoss):
    """Symmetric InfoNCE (CLIP) loss between L2-normalised teacher and student features.

    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
    ICML 2021 (CLIP); van den Oord et al., "Representation Learning with Contrastive Predictive
    Coding", 2018. Matches ``open_clip.loss.ClipLoss(local_loss, gather_with_grad)`` called with
    ``image_features=student``, ``text_features=teacher`` (the loss is symmetric).

    Args:
        local_loss: each rank scores only its own rows against the gathered batch
            (B x world_size*B logits) instead of the full global matrix. The per-rank loss then
            differs between ranks; the DDP-averaged gradient is still the global one.
        gather_with_grad: gradients flow through the gathered features to every rank.
            Without it the gathered copy is detached (and, with ``local_loss=False``, this rank's
            block keeps its gradient), which gives approximate gradients.

    Inputs: ``teacher`` [B, D], ``student`` [B, D], ``logit_scale`` (multiplier, scalar tensor).
    Raises ValueError without ``logit_scale``.
    """

    paper = "Radford et al. 2021, CLIP (arXiv:2103.00020)"
    needs_logit_scale = True
    needs_gather = True

    def __init__(self, local_loss: bool = True, gather_with_grad: bool = True):
        super().__init__()
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad

    def logits(self, teacher: Tensor, student: Tensor, logit_scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (logits_per_student, logits_per_teacher, target indices)."""
        img, txt = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
        if D.world_size() == 1:
            per_img = logit_scale * img @ txt.T
            return per_img, logit_scale * txt @ img.T, torch.arange(img.shape[0], device=img.device)
        keep = not self.local_loss
        all_img = gather_features(img, self.gather_with_grad, keep)
        all_txt = gather_features(txt, self.gather_with_grad, keep)
        if self.local_loss:
            targets = torch.arange(img.shape[0], device=img.device) + img.shape[0] * D.rank()
            return logit_scale * img @ all_txt.T, logit_scale * txt @ all_img.T, targets
        per_img = logit_scale * all_img @ all_txt.T
        return per_img, per_img.T, torch.arange(per_img.shape[0], device=img.device)

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        scale = self._require(logit_scale, "logit_scale")
        self._same_dim(teacher, student)
        per_img, per_txt, targets = self.logits(teacher, student, scale)
        return (F.cross_entropy(per_img, targets) + F.cross_entropy(per_txt, targets)) / 2
