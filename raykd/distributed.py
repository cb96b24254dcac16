"""Collective helpers that are correct at world size 1 and N.

Without an initialised ``torch.distributed`` process group (or with a group of size 1) every
helper is a no-op, so losses, training and evaluation code call them unconditionally. With a
group (gloo on CPU, nccl on GPU) they wrap the matching collective. Devices always come from the
inputs; nothing here moves tensors.

Gradient convention of :func:`all_gather_with_grad`: the backward pass sums the gradient of the
gathered tensor over all ranks and hands each rank the slice of its own input. If every rank
computes the same loss ``L`` on the gathered batch, each rank's input gradient is
``world_size * dL/dx_rank``; DDP's gradient averaging then yields exactly ``dL/dparams`` (the same
convention as open_clip's ``gather_with_grad`` and VICReg's ``FullGatherLayer``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "is_dist",
    "world_size",
    "rank",
    "all_gather_with_grad",
    "all_gather_no_grad",
    "all_reduce_sum",
    "all_reduce_mean",
    "broadcast",
    "sync_grad",
    "mark_averaged_by_ddp",
    "average_batchnorm_stats",
]


def is_dist() -> bool:
    """True when a torch.distributed process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group (1 without a group)."""
    return dist.get_world_size() if is_dist() else 1


def rank() -> int:
    """This process's rank in the default group (0 without a group)."""
    return dist.get_rank() if is_dist() else 0


def _active() -> bool:
    return is_dist() and dist.get_world_size() > 1


def _gather(x: torch.Tensor) -> list[torch.Tensor]:
    x = x.contiguous()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return parts


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward all-reduces (sums) the gradient and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rank, ctx.size = dist.get_rank(), x.shape[0]
        return torch.cat(_gather(x), dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.narrow(0, ctx.rank * ctx.size, ctx.size)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [B, ...] from all ranks along dim 0 -> [world_size * B, ...].

    Gradients flow back to every rank's input (see the module docstring for the convention).
    All ranks must pass the same shape. At world size 1 returns ``x`` itself.
    """
    if not _active():
        return x
    return _GatherWithGrad.apply(x)


def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [B, ...] from all ranks along dim 0, detached from the graph."""
    if not _active():
        return x.detach()
    with torch.no_grad():
        return torch.cat(_gather(x.detach()), dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of ``x`` over ranks as a new detached tensor (``x`` is left untouched)."""
    out = x.detach().clone()
    if _active():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks as a new detached tensor (``x`` is left untouched)."""
    return all_reduce_sum(x) / world_size()


def broadcast(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """``x`` from rank ``src`` on every rank, as a new detached tensor."""
    out = x.detach().clone().contiguous()
    if _active():
        dist.broadcast(out, src=src)
    return out


class _SyncGrad(torch.autograd.Function):
    """Identity forward; backward averages the gradient over ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad / dist.get_world_size()


def sync_grad(x: torch.Tensor) -> torch.Tensor:
    """Identity whose backward averages the gradient of ``x`` over ranks.

    Losses pass their own parameters (learnable scales, prototypes) through it, so those
    gradients are averaged across workers exactly as DDP averages the model's gradients, even
    when the loss module is not wrapped in DDP. When it is (the training loop wraps model and losses
    in one DDP module), `mark_averaged_by_ddp` flags its parameters and this is the identity: a second
    all-reduce of the same gradient would only cost time. Every rank must use ``x`` in its backward pass.
    """
    if not _active() or getattr(x, AVERAGED_BY_DDP, False):
        return x
    return _SyncGrad.apply(x)


AVERAGED_BY_DDP = "_raykd_averaged_by_ddp"


def mark_averaged_by_ddp(module: torch.nn.Module) -> None:
    """Flag ``module``'s parameters as averaged by a DDP wrapper (``sync_grad`` then leaves them alone)."""
    for p in module.parameters():
        setattr(p, AVERAGED_BY_DDP, True)


@torch.no_grad()
def average_batchnorm_stats(model: torch.nn.Module) -> None:
    """Replace every BatchNorm's running mean and variance by their mean over ranks, in place.

    Training runs DDP with ``broadcast_buffers=False`` (see ``raykd.train.ray_context``), so each
    worker's statistics follow its own batches; averaging them before a checkpoint or an evaluation
    (as timm's ``distribute_bn(reduce=True)``) gives statistics of the global batch. No-op at world size 1.
    """
    if not _active():
        return
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buffer in (module.running_mean, module.running_var):
                if buffer is not None:
                    buffer.copy_(all_reduce_mean(buffer))
