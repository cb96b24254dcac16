"""Learning-rate schedules as plain step -> factor functions (wrap one in ``torch.optim.lr_scheduler.LambdaLR``).

Used by training (:mod:`raykd.train.optim`) and by ELEVATER's linear head (:mod:`raykd.eval.elevater.classifier`);
it sits below both and imports nothing of raykd.
"""
from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant")


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "cosine") -> float:
    """The factor of the base learning rate at ``step`` (0-based): linear warmup from ``1 / warmup_steps`` to 1
    over ``warmup_steps``, then cosine decay to 0 at ``total_steps`` (and 0 after), or 1 with ``schedule =
    "constant"`` or when ``total_steps <= warmup_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))
