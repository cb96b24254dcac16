"""Locking: freeze a whole tower, or the parameters whose names match patterns.

Three config forms, combinable (`model.image.*` / `model.text.*`):
    lock: true               freeze the whole backbone
    lock_patterns: [...]     freeze the parameters matching any pattern ("freeze these")
    train_patterns: [...]    freeze every parameter except those matching ("train only these")
Patterns are shell-style globs (`fnmatch`; `*` also crosses dots) over the parameter names inside
the backbone, e.g. `conv1.*`, `layer[12].*`, `*.bn*`, `encoder.layer.1[01].*`. A pattern that
matches no parameter is an error. Parameters a builder added for parameter-efficient tuning
(adapters, CoOp context: `Tower.added_params`) stay trainable under `lock` / `train_patterns`.

Frozen parameters get `requires_grad=False`; every submodule whose parameters are all frozen is
recorded in `tower.frozen_modules` so `DualEncoder.train()` keeps it in eval mode (BatchNorm
running statistics and dropout frozen). A tower with no trainable parameter left runs under
`torch.no_grad()` (see `DualEncoder`).
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Iterable

from torch import nn

PREFIX = "backbone."


def short_name(name: str) -> str:
    """'backbone.layer1.0.conv1.weight' -> 'layer1.0.conv1.weight' (the name patterns see)."""
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(short_name(name), p) for p in patterns)


def _check_patterns(names: list[str], patterns: list[str], option: str) -> None:
    """Raise ValueError for a pattern that matches no parameter, showing names that look close."""
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{option}: patterns must be non-empty strings, got {pattern!r}")
        if not any(fnmatch.fnmatchcase(short_name(n), pattern) for n in names):
            shorts = [short_name(n) for n in names]
            close = difflib.get_close_matches(pattern.replace("*", ""), shorts, n=5, cutoff=0.3) or shorts[:5]
            raise ValueError(f"{option}: pattern '{pattern}' matches no parameter of the tower; "
                             f"parameter names look like: {close}")


def select_frozen(module: nn.Module, *, lock: bool = False, lock_patterns: list[str] = (),
                  train_patterns: list[str] = (), keep: Iterable[str] = (), option: str = "model") -> set[str]:
    """Names of the parameters (relative to `module`) that the locking options freeze."""
    names = [n for n, _ in module.named_parameters()]
    _check_patterns(names, list(lock_patterns), f"{option}.lock_patterns")
    _check_patterns(names, list(train_patterns), f"{option}.train_patterns")
    keep = set(keep)
    frozen = {n for n in names if n not in keep} if lock else set()
    if train_patterns:
        frozen |= {n for n in names if n not in keep and not _matches(n, train_patterns)}
    frozen |= {n for n in names if _matches(n, lock_patterns)}
    return frozen


def fully_frozen_modules(module: nn.Module, frozen: set[str]) -> list[str]:
    """The outermost submodules (names; '' is `module` itself) whose parameters are all in `frozen`."""
    out: list[str] = []
    for name, sub in module.named_modules():
        if any(name == o or name.startswith(o + ".") or o == "" for o in out):
            continue
        prefix = f"{name}." if name else ""
        params = [prefix + n for n, _ in sub.named_parameters()]
        if params and all(p in frozen for p in params):
            out.append(name)
    return out


def apply_locking(tower: nn.Module, *, lock: bool = False, lock_patterns: list[str] = (),
                  train_patterns: list[str] = (), option: str = "model") -> set[str]:
    """Freeze what the options select; set `tower.frozen_modules`; return the frozen names."""
    frozen = select_frozen(tower, lock=lock, lock_patterns=lock_patterns, train_patterns=train_patterns,
                           keep=getattr(tower, "added_params", ()), option=option)
    params = dict(tower.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    previous = list(getattr(tower, "frozen_modules", []))
    tower.frozen_modules = sorted(set(previous) | set(fully_frozen_modules(tower, frozen)))
    return frozen
