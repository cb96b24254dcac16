"""Building blocks for stateful losses: a FIFO feature queue and a cosine prototype layer.

Both size themselves from the first input (the feature dim is only known then), initialise from
a fixed seed so every worker starts from the same state without communication, and accept a
``load_state_dict`` into a fresh, not yet sized instance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from raykd import distributed as D


def state_dtype(x: Tensor) -> torch.dtype:
    """dtype to keep state in for inputs like ``x``: at least float32 (also under autocast)."""
    return torch.promote_types(x.dtype, torch.float32)


def resize_buffers_from_state(module: nn.Module, names, state_dict, prefix: str) -> None:
    """Before loading: give the lazily sized buffers ``names`` the shapes found in ``state_dict``."""
    for name in names:
        key, buf = prefix + name, module._buffers[name]
        if key in state_dict and state_dict[key].shape != buf.shape:
            module._buffers[name] = torch.empty_like(state_dict[key], device=buf.device)


class FeatureQueue(nn.Module):
    """FIFO memory bank ``bank`` [size, dim] of L2-normalised features (MoCo-style).

    Starts as random unit vectors (seeded). ``push`` writes a batch at the pointer and advances
    it modulo ``size`` (wrap-around), so a size that is not a multiple of the global batch is
    fine; a batch larger than the queue keeps its last ``size`` rows.
    """

    def __init__(self, size: int, seed: int = 0):
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size, self.seed = size, seed
        self.register_buffer("bank", torch.empty(0))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def features(self, like: Tensor) -> Tensor:
        """A copy of the bank [size, dim] (no grad) in ``like``'s dtype, created on first use.

        A copy, so that ``push`` after the loss does not modify a tensor saved for backward."""
        if self.bank.numel() == 0:
            g = torch.Generator().manual_seed(self.seed)
            bank = torch.randn(self.size, like.shape[-1], generator=g, dtype=state_dtype(like))
            self.bank = F.normalize(bank, dim=-1).to(like.device)
        return self.bank.detach().to(like.dtype, copy=True)

    @torch.no_grad()
    def push(self, feats: Tensor) -> None:
        """Enqueue ``feats`` [N, dim] (already gathered and normalised), oldest entries first out."""
        n = feats.shape[0]
        pos = (self.ptr + torch.arange(n, device=self.bank.device)) % self.size
        if n > self.size:
            pos, feats = pos[-self.size :], feats[-self.size :]
        self.bank[pos] = feats.detach().to(self.bank)
        self.ptr.copy_((self.ptr + n) % self.size)  # on the device: no host sync per step

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_buffers_from_state(self, ["bank"], state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CosinePrototypes(nn.Module):
    """Prototype layer: ``logits = normalize(x) @ normalize(weight).T`` -> [B, n_prototypes].

    This is DINO's weight-normalised last layer with the norm fixed to 1 (``norm_last_layer``).
    ``weight`` [n_prototypes, dim] is created at the first call when ``dim`` is None (give
    ``dim``, or run one forward pass before building the optimiser). Its gradient is averaged
    over workers (``raykd.distributed.sync_grad``).
    """

    def __init__(self, n_prototypes: int, dim: int | None = None, seed: int = 0):
        super().__init__()
        self.n_prototypes, self.seed = n_prototypes, seed
        self.weight = nn.UninitializedParameter() if dim is None else nn.Parameter(self._init(dim))

    def _init(self, dim: int, dtype=torch.float32) -> Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return torch.randn(self.n_prototypes, dim, generator=g, dtype=dtype) * 0.02

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.weight, nn.UninitializedParameter):
            self.weight.materialize((self.n_prototypes, x.shape[-1]), device=x.device)
            with torch.no_grad():
                self.weight.copy_(self._init(x.shape[-1], self.weight.dtype))
        w = D.sync_grad(self.weight).to(x.dtype)
        return F.normalize(x, dim=-1) @ F.normalize(w, dim=-1).T

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        if isinstance(self.weight, nn.UninitializedParameter) and key in state_dict:
            self.weight.materialize(state_dict[key].shape, device=self.weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
