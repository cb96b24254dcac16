"""Projection heads: a linear map or an MLP from a tower's width to the joint space.

Prototype layers (DINO, ProtoCPC) belong to the losses that need them (`raykd.losses`), so a
head is always `Tensor[B, in_dim] -> Tensor[B, out_dim]`.

Two ways to count depth (`head.style`):
- `mlp` (raykd's): `n_layers` hidden Linear-norm-activation blocks, then a Linear to `out_dim`
  (n_layers 0: one Linear; 2: three Linear layers);
- `dino`: DINO's projection MLP as the original codebase built it (Caron et al., "Emerging Properties
  in Self-Supervised Vision Transformers", ICCV 2021, `DINOHead` without its prototype layer):
  `n_layers` counts every Linear layer (0: the identity, 1: one Linear, 2: Linear-act-Linear), weights
  initialised from a truncated normal (std 0.02), biases zero.
"""
from __future__ import annotations

from torch import nn

from raykd.config.schema import HeadConfig

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}
_NORMS = {"none": None, "batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}


def _mlp(cfg: HeadConfig, in_dim: int, out_dim: int, n_hidden: int) -> nn.Module:
    """`n_hidden` Linear-norm-activation blocks of width `cfg.hidden_dim`, then Linear to `out_dim`."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_hidden):
        layers.append(nn.Linear(width, cfg.hidden_dim))
        if _NORMS[cfg.norm] is not None:
            layers.append(_NORMS[cfg.norm](cfg.hidden_dim))
        layers.append(_ACTIVATIONS[cfg.activation]())
        width = cfg.hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers) if len(layers) > 1 else layers[0]


def _dino(cfg: HeadConfig, in_dim: int, out_dim: int, option: str) -> nn.Module:
    if cfg.n_layers == 0:
        if in_dim != out_dim:
            raise ValueError(f"{option}.n_layers: 0 with style 'dino' is the identity, so the tower's width "
                             f"({in_dim}) must equal model.embed_dim ({out_dim}); set n_layers >= 1")
        return nn.Identity()
    head = _mlp(cfg, in_dim, out_dim, cfg.n_layers - 1)
    for module in head.modules():
        if isinstance(module, nn.Linear):  # DINOHead._init_weights
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
    return head


def build_head(cfg: HeadConfig, in_dim: int, out_dim: int, option: str = "model.*.head") -> nn.Module:
    """The head `cfg` describes (see the module docstring for `style`).

    Style `mlp` with n_layers == 0 is a single linear projection, or Identity when
    `identity_if_possible` and the widths already agree (e.g. open_clip towers that carry their own
    projection). Raises ValueError naming `option` for a negative depth or an impossible identity."""
    if cfg.n_layers < 0:
        raise ValueError(f"{option}.n_layers must be >= 0, got {cfg.n_layers}")
    if cfg.style == "dino":
        return _dino(cfg, in_dim, out_dim, option)
    if cfg.n_layers == 0 and cfg.identity_if_possible and in_dim == out_dim:
        return nn.Identity()
    return _mlp(cfg, in_dim, out_dim, cfg.n_layers)
