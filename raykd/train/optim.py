"""Optimiser and learning-rate schedule.

Weight decay skips parameters that should not shrink towards zero: biases, normalisation
weights (all 1-D tensors), embeddings and the logit scale (as open_clip does).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from raykd.config.schema import OptimConfig


def _no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim < 2 or "logit_scale" in name or "embedding" in name or "bias" in name


def param_groups(modules: dict[str, nn.Module], weight_decay: float) -> list[dict]:
    """Trainable parameters of every module, split into decay / no-decay groups."""
    decay, no_decay = [], []
    for prefix, module in modules.items():
        for name, param in module.named_parameters():
            if param.requires_grad:
                (no_decay if _no_decay(f"{prefix}.{name}", param) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg: OptimConfig, modules: dict[str, nn.Module]) -> torch.optim.Optimizer:
    groups = param_groups(modules, cfg.weight_decay)
    if not any(g["params"] for g in groups):
        raise ValueError("nothing to train: every parameter is locked (model.image.lock / model.text.lock)")
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Linear warmup to 1, then cosine decay to 0 at `total_steps` (or constant)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(cfg: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg.warmup_steps, total_steps, cfg.schedule))
