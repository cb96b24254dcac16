"""Base class of every raykd loss: one signature, capability flags as class attributes."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _at_least_fp32(x: Tensor | None) -> Tensor | None:
    return x.float() if x is not None and x.dtype in (torch.float16, torch.bfloat16) else x


class DistillLoss(nn.Module):
    """Loss between the projection-head outputs of a teacher and a student tower.

    ``forward(teacher [B, D_t], student [B, D_s], *, logit_scale=None, labels=None) -> scalar``.
    ``teacher`` and ``student`` are unnormalised; each loss L2-normalises where its paper does.
    ``logit_scale`` is the multiplier (already exponentiated and clamped by the model).

    Capability flags (class attributes) tell the trainer what a loss needs:
    ``needs_logit_scale`` (uses the model's logit scale), ``needs_gather`` (communicates across
    workers), ``uni_directional`` (teacher is a fixed target: no gradient to it),
    ``needs_prototypes`` (owns prototypes: a prototype layer, or k-means centroids refreshed by
    an ``update_prototypes(features)`` method), ``updates_prototypes`` (set for every class that
    defines ``update_prototypes``: the trainer collects each episode's teacher features and calls it
    once per episode, and checks an episode holds enough samples), ``needs_labels`` (needs class labels), ``uses_teacher`` (False: the teacher features are ignored,
    so the trainer freezes that side).
    Parameters (learnable scales, prototypes) and buffers (queues, centers) live on the module,
    so ``loss.parameters()`` goes to the optimiser and ``state_dict()`` checkpoints the state;
    stateful losses update their state in training mode only.

    Across workers, losses with ``needs_gather`` communicate only through ``raykd.distributed``
    and, with the global batch split evenly, keep these conventions: the mean over workers of
    the per-worker loss equals the single-process loss on the global batch; each worker's input
    gradients are ``world_size`` times the single-process gradients of its rows, so DDP's
    gradient averaging gives the exact global gradient (InfoNCE with ``gather_with_grad=False``
    is approximate by design); the loss's own parameter gradients are averaged over workers by
    the loss (``sync_grad``); updated state is identical on every worker. The other losses are
    computed on each worker's batch alone.

    Raises ValueError naming the loss when a needed argument (``logit_scale``, ``labels``) is
    missing or dims that must match do not.
    """

    name: str = ""
    paper: str = ""
    needs_logit_scale: bool = False
    needs_gather: bool = False
    uni_directional: bool = False
    needs_prototypes: bool = False
    updates_prototypes: bool = False  # derived: True where the class defines update_prototypes
    needs_labels: bool = False
    uses_teacher: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.updates_prototypes = callable(getattr(cls, "update_prototypes", None))

    def __call__(self, teacher: Tensor | None, student: Tensor, *, logit_scale: Tensor | None = None,
                 labels: Tensor | None = None) -> Tensor:
        """The loss in fp32 (or fp64) whatever the caller's autocast: under bf16, SEED's temperature 1e-4 turns near
        ties into ties, BarlowTwins' cross-correlation keeps 8 mantissa bits and InfoNCE's logits at scale
        100 move by ~0.5. Features are cast up (the cast is differentiable) and autocast is off inside."""
        with torch.autocast(student.device.type, enabled=False):
            return super().__call__(_at_least_fp32(teacher), _at_least_fp32(student),
                                    logit_scale=None if logit_scale is None else _at_least_fp32(logit_scale),
                                    labels=labels)

    def forward(
        self,
        teacher: Tensor,
        student: Tensor,
        *,
        logit_scale: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError

    def _require(self, value, what: str):
        """Return ``value``; raise a ValueError naming this loss when it is None."""
        if value is None:
            raise ValueError(f"loss {self.name or type(self).__name__!r} needs `{what}`, got None")
        return value

    def _same_dim(self, teacher: Tensor, student: Tensor) -> None:
        if teacher.shape[-1] != student.shape[-1]:
            raise ValueError(
                f"loss {self.name!r} needs equal teacher and student dims, got "
                f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)}; add a projection head"
            )
