"""Small tensor functions shared by several losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over rows of ``-sum(targets * log_softmax(logits))``; both [B, K]."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def off_diagonal(m: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix [n, n], flattened [n * (n - 1)]."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()
