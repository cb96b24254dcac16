"""Optimiser (any of timm's, by timm's name), parameter groups and learning-rate schedule.

raykd builds the parameter groups below and hands them to `timm.optim.create_optimizer_v2`, which
only picks the optimizer class: `optim.name` is spelled as timm spells it (`adamw`, `lamb`, `lars`,
`lion`, `adabelief`, `nadam`, `radam`, `sgd` = SGD with Nesterov momentum, `momentum` = plain
momentum SGD, `lookahead_<name>` wrapping any of them in Lookahead, ...).

Weight decay skips parameters that should not shrink towards zero: biases, normalisation weights
(all 1-D tensors), embeddings (`nn.Embedding` weights, position/class embeddings and tokens),
the logit scale, and whatever a module lists in its own `no_weight_decay()` (timm, open_clip).

Learning rates: every parameter of a tower backbone trains at `lr * backbone_lr_ratio`, scaled
further by layer-wise decay (`image_layer_decay` / `text_layer_decay`; see
`raykd.models.layers`); heads, the logit scale, loss parameters and the parameters a builder
added for parameter-efficient tuning (adapters, CoOp) train at `lr`. Each group carries its
`lr_scale`; the schedule (`raykd.schedules.lr_factor`) multiplies every group's initial rate by the same
factor.
"""
from __future__ import annotations

import difflib
import re

import torch
from torch import nn

from raykd.config.schema import OptimConfig
from raykd.models.layers import layer_ids
from raykd.schedules import lr_factor

_TOKENS = re.compile(r"(^|\.)(cls_token|class_token|reg_token|dist_token|mask_token)$")


def no_decay_names(modules: dict[str, nn.Module]) -> set[str]:
    """Full names (`prefix.name`) listed by `no_weight_decay()` methods or owned by nn.Embedding."""
    names: set[str] = set()
    for prefix, module in modules.items():
        for sub_name, sub in module.named_modules():
            base = ".".join(x for x in (prefix, sub_name) if x)
            if isinstance(sub, nn.Embedding):
                names.add(f"{base}.weight")
            listed = getattr(sub, "no_weight_decay", None)
            if callable(listed):
                try:
                    names.update(f"{base}.{n}" for n in listed())
                except Exception:  # a method with another meaning (or needing arguments): ignore it
                    pass
    return names


def _no_decay(name: str, param: torch.Tensor, listed: set[str] = frozenset()) -> bool:
    return (param.ndim < 2 or name in listed or "logit_scale" in name or "embedding" in name
            or "bias" in name or bool(_TOKENS.search(name)))


def lr_scales(modules: dict[str, nn.Module], cfg: OptimConfig) -> dict[str, float]:
    """{full parameter name: lr multiplier} for the tower backbones of every DualEncoder in `modules`."""
    scales: dict[str, float] = {}
    for prefix, module in modules.items():
        for tower_name, decay in (("image", cfg.image_layer_decay), ("text", cfg.text_layer_decay)):
            tower = getattr(module, tower_name, None)
            if not isinstance(getattr(module, f"{tower_name}_head", None), nn.Module) or tower is None:
                continue  # not a DualEncoder
            if decay != 1.0:
                try:
                    ids, n_layers = layer_ids(tower, unit=cfg.layer_decay_unit)
                except ValueError as err:
                    raise ValueError(f"optim.{tower_name}_layer_decay: {err}") from err
            added = set(getattr(tower, "added_params", ()))
            for name, _ in tower.named_parameters():
                if name not in added:
                    depth = decay ** (n_layers - ids[name]) if decay != 1.0 else 1.0
                    scales[f"{prefix}.{tower_name}.{name}"] = cfg.backbone_lr_ratio * depth
    return scales


def param_groups(modules: dict[str, nn.Module], weight_decay: float,
                 scales: dict[str, float] | None = None) -> list[dict]:
    """Trainable parameters of every module, grouped by (weight decay, lr_scale).

    Groups at lr_scale 1 come first (so `param_groups[0]['lr']` is the base rate)."""
    listed, scales = no_decay_names(modules), scales or {}
    groups: dict[tuple[float, float], list] = {}
    for prefix, module in modules.items():
        for name, param in module.named_parameters():
            if param.requires_grad:
                full = f"{prefix}.{name}"
                wd = 0.0 if _no_decay(full, param, listed) else weight_decay
                groups.setdefault((wd, scales.get(full, 1.0)), []).append(param)
    keys = sorted(groups, key=lambda k: (k[1] != 1.0, -k[1], -k[0]))
    return [{"params": groups[k], "weight_decay": k[0], "lr_scale": k[1]} for k in keys]


def optimizer_names() -> list[str]:
    """timm's optimizer names (each also valid as `lookahead_<name>`)."""
    import timm.optim  # the optimizer zoo: loaded when an optimizer is built or checked

    return timm.optim.list_optimizers()


def check_optimizer_name(name: str) -> None:
    """Raise ValueError naming `optim.name` when timm has no optimizer `name` (nor `lookahead_<name>`)."""
    valid = optimizer_names()
    base = name[len("lookahead_"):] if name.startswith("lookahead_") else name
    if base not in valid:  # checked here: timm itself reads only what follows the last '_'
        close = difflib.get_close_matches(base, valid, n=3)
        raise ValueError(f"optim.name: unknown optimizer '{name}'; close matches {close}; valid (as timm spells "
                         f"them, each also as lookahead_<name>): {valid}")


def build_optimizer(cfg: OptimConfig, modules: dict[str, nn.Module]) -> torch.optim.Optimizer:
    """timm's optimizer `cfg.name` over raykd's `param_groups`; each group's lr is `cfg.lr * lr_scale`.

    Raises ValueError for an unknown name, options the optimizer does not take, or nothing to train."""
    from timm.optim import create_optimizer_v2  # heavy: loaded when an optimizer is built

    check_optimizer_name(cfg.name)
    if not 0.0 < cfg.image_layer_decay <= 1.0 or not 0.0 < cfg.text_layer_decay <= 1.0:
        raise ValueError("optim.image_layer_decay / optim.text_layer_decay must be in (0, 1]")
    if cfg.backbone_lr_ratio < 0:
        raise ValueError(f"optim.backbone_lr_ratio must be >= 0, got {cfg.backbone_lr_ratio}")
    groups = param_groups(modules, cfg.weight_decay, lr_scales(modules, cfg))
    if not groups:
        raise ValueError("nothing to train: every parameter is locked (model.image.lock / model.text.lock)")
    for group in groups:
        group["lr"] = cfg.lr * group["lr_scale"]
    try:  # timm drops betas / eps / momentum for optimizers without them
        return create_optimizer_v2(groups, opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                   momentum=cfg.momentum, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    except (TypeError, ValueError) as err:
        raise ValueError(f"optim.name: timm's '{cfg.name}' could not be built from the optim options: {err}") from err


def build_scheduler(cfg: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """`cfg.schedule` (warmup + cosine, or constant) over `total_steps`, stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg.warmup_steps, total_steps, cfg.schedule))
