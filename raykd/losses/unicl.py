"""UniCL: label-aware symmetric contrastive loss in image-text-label space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from raykd import distributed as D
from raykd.losses._functional import soft_cross_entropy
from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


def unique_negatives(labels: Tensor) -> Tensor:
    """Replace each label -1 with a distinct negative id, so such a row matches only itself."""
    ids = -1 - torch.arange(labels.shape[0], device=labels.device, dtype=labels.dtype)
    return torch.where(labels < 0, ids, labels)


@register_loss("UniCL")
class UniCL(DistillLoss):
    """Symmetric contrastive loss where all pairs with the same class label are positives.

    Yang, Li, Zhang, Xiao, Liu, Yuan, Gao, "Unified Contrastive Learning in Image-Text-Label
    Space", CVPR 2022. Targets are the positive mask ``labels_i == labels_j`` normalised per row,
    over the gathered global batch; label -1 marks a plain image-text pair whose only positive is
    itself. With all labels -1 this is InfoNCE. Each worker computes the rows of its local
    samples against the gathered features (gathered with gradient; as InfoNCE's
    ``local_loss=True``): the mean over workers equals the single-process global loss.
    Inputs: ``teacher``, ``student`` [B, D]; ``labels`` [B] (long); ``logit_scale`` (multiplier).
    Raises ValueError without labels or logit_scale.
    """

    paper = "Yang et al. 2022, UniCL (CVPR, arXiv:2204.03610)"
    needs_logit_scale = True
    needs_labels = True
    needs_gather = True

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._same_dim(teacher, student)
        scale = self._require(logit_scale, "logit_scale")
        labels = self._require(labels, "labels").to(student.device)
        img, txt = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
        all_img, all_txt = D.all_gather_with_grad(img), D.all_gather_with_grad(txt)
        all_labels = unique_negatives(D.all_gather_no_grad(labels))
        b = img.shape[0]
        local = all_labels[D.rank() * b : (D.rank() + 1) * b]
        positives = (local.unsqueeze(1) == all_labels.unsqueeze(0)).to(img.dtype)
        targets = positives / positives.sum(dim=1, keepdim=True)
        loss_img = soft_cross_entropy(scale * img @ all_txt.T, targets)
        loss_txt = soft_cross_entropy(scale * txt @ all_img.T, targets)
        return (loss_img + loss_txt) / 2
