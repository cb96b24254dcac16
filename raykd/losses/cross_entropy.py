"""Supervised classification cross-entropy on head outputs."""

from __future__ import annotations

import torch.nn.functional as F

from raykd.losses.base import DistillLoss
from raykd.losses.registry import register_loss


@register_loss("CrossEntropy")
class CrossEntropy(DistillLoss):
    """Classification cross-entropy for labelled data: ``student`` are logits [B, C].

    ``teacher`` is ignored (kept for the common signature); ``labels`` [B] are class indices in
    [0, C). Rows labelled ``ignore_index`` (default -1, "no class", as in UniCL) are skipped; a
    batch with no labelled row gives NaN, which the training loop reports.
    Raises ValueError without ``labels``.
    """

    paper = "supervised classification (cross-entropy)"
    needs_labels = True
    uses_teacher = False

    def __init__(self, label_smoothing: float = 0.0, ignore_index: int = -1):
        super().__init__()
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        labels = self._require(labels, "labels")
        labels = labels.to(student.device)
        return F.cross_entropy(
            student, labels, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )
