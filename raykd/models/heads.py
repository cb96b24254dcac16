"""Projection heads: a linear map or a DINO-style MLP from a tower's width to the joint space.

Prototype layers (DINO, ProtoCPC) belong to the losses that need them (`raykd.losses`), so a
head is always `Tensor[B, in_dim] -> Tensor[B, out_dim]`.
"""
from __future__ import annotations

from torch import nn

from raykd.config.schema import HeadConfig

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}
_NORMS = {"none": None, "batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}


def build_head(cfg: HeadConfig, in_dim: int, out_dim: int) -> nn.Module:
    """`n_layers` hidden Linear-norm-activation blocks, then Linear to `out_dim`.

    n_layers == 0 is a single linear projection (or Identity when `identity_if_possible` and the
    widths already agree, e.g. open_clip towers that carry their own projection).
    """
    if cfg.n_layers < 0:
        raise ValueError(f"model.*.head.n_layers must be >= 0, got {cfg.n_layers}")
    if cfg.n_layers == 0 and cfg.identity_if_possible and in_dim == out_dim:
        return nn.Identity()
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(cfg.n_layers):
        layers.append(nn.Linear(width, cfg.hidden_dim))
        if _NORMS[cfg.norm] is not None:
            layers.append(_NORMS[cfg.norm](cfg.hidden_dim))
        layers.append(_ACTIVATIONS[cfg.activation]())
        width = cfg.hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers) if len(layers) > 1 else layers[0]
