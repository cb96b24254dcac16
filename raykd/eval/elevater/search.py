"""The learning-rate x weight-decay search of ELEVATER's toolkit (``hyperparameter_sweep_lr`` and
``hyperparameter_sweep`` in ``vision_benchmark/evaluation/full_model_finetune.py``).

For every learning rate of the grid (``logspace(-6, -1, 6)``), the weight decay is searched on a 97-point
log grid over ``[1e-6, 1e6]``: first the 7 coarse points (every 16th, the decades 1e-6, 1e-4, ..., 1e6), then
a refinement around the best index with steps 8, 4, 2, 1 (its left and right neighbours at that distance,
clipped to the grid). The learning rate with the best validation score wins, with its weight decay. Scores
are compared strictly (the first of equal scores is kept); a trial that raises or scores NaN counts as 0.
The refinement scores the neighbour it names (the toolkit's default ``TRAIN.WD_SEARCH_LEFT: False``; the
initial release always re-scored the left one).

``start="toolkit"`` starts as the toolkit does: the weight-decay peak at the last grid point with score 0,
the best learning rate 0 with weight decay 0 and score 0, so a score must beat 0 to count (when none does,
the result is lr 0, weight decay 0, as the toolkit's). ``start="first"`` (protocol ``clean``) starts from
the first grid point and the first learning rate with score -inf.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

LR_GRID = tuple(float(x) for x in np.logspace(-6, -1, num=6))
WD_LOG_RANGE = (-6.0, 6.0)
WD_POINTS = 97
WD_COARSE_POINTS = 7
REFINE_START_STEP = 8


@dataclass(frozen=True)
class SearchSpace:
    lrs: tuple[float, ...] = LR_GRID
    wd_log_range: tuple[float, float] = WD_LOG_RANGE
    wd_points: int = WD_POINTS
    coarse_points: int = WD_COARSE_POINTS
    refine_start_step: int = REFINE_START_STEP

    def __post_init__(self) -> None:
        if not self.lrs:
            raise ValueError("the learning-rate grid is empty")
        if self.coarse_points < 2 or (self.wd_points - 1) % (self.coarse_points - 1):
            raise ValueError(f"{self.coarse_points} coarse points do not divide a {self.wd_points}-point grid evenly")

    @property
    def wd_grid(self) -> np.ndarray:
        return np.logspace(*self.wd_log_range, num=self.wd_points)

    @property
    def coarse_indices(self) -> list[int]:
        return list(range(0, self.wd_points, (self.wd_points - 1) // (self.coarse_points - 1)))


@dataclass
class SearchResult:
    lr: float
    weight_decay: float
    score: float
    trials: list[tuple[float, float, float]] = field(default_factory=list)  # (lr, wd, score), in order


def _safe(evaluate: Callable[[float, float], float], lr: float, wd: float) -> float:
    try:
        value = float(evaluate(lr, wd))
    except (RuntimeError, ValueError, FloatingPointError):  # diverged / degenerate fits score 0, as in the toolkit
        return 0.0
    return value if np.isfinite(value) else 0.0


STARTS = ("toolkit", "first")


def search_weight_decay(evaluate: Callable[[float, float], float], lr: float, space: SearchSpace,
                        trials: list[tuple[float, float, float]], start: str = "first") -> tuple[float, float]:
    """(best weight decay, its score) for one learning rate: coarse grid, then refinement."""
    grid, memo = space.wd_grid, {}

    def score(idx: int) -> float:
        if idx not in memo:
            memo[idx] = _safe(evaluate, lr, float(grid[idx]))
            trials.append((lr, float(grid[idx]), memo[idx]))
        return memo[idx]

    peak_idx, peak = (len(grid) - 1, 0.0) if start == "toolkit" else (space.coarse_indices[0], -np.inf)
    for idx in space.coarse_indices:
        if score(idx) > peak:
            peak_idx, peak = idx, score(idx)
    step = space.refine_start_step
    while step > 0:
        left, right = max(peak_idx - step, 0), min(peak_idx + step, len(grid) - 1)
        for idx in [i for i in (left, right) if i != peak_idx]:
            if score(idx) > peak:
                peak_idx, peak = idx, score(idx)
        step //= 2
    return float(grid[peak_idx]), float(peak)


def search(evaluate: Callable[[float, float], float], space: SearchSpace | None = None,
           start: str = "first") -> SearchResult:
    """Search ``space`` for the (lr, weight decay) maximising ``evaluate(lr, wd)`` (a validation score),
    starting as ``start`` says (module docstring)."""
    if start not in STARTS:
        raise ValueError(f"unknown search start {start!r}; choose from {STARTS}")
    space = space or SearchSpace()
    trials: list[tuple[float, float, float]] = []
    best = (SearchResult(0.0, 0.0, 0.0, trials) if start == "toolkit"
            else SearchResult(space.lrs[0], float(space.wd_grid[0]), -np.inf, trials))
    for lr in space.lrs:
        wd, value = search_weight_decay(evaluate, float(lr), space, trials, start)
        if value > best.score:
            best.lr, best.weight_decay, best.score = float(lr), wd, value
    return best


def parse_grid(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"1e-5,1e-3"`` -> ``(1e-5, 1e-3)``. Raises ValueError for a non-positive or non-numeric value."""
    values = text.split(",") if isinstance(text, str) else list(text)
    try:
        out = tuple(float(v) for v in values if str(v).strip())
    except ValueError:
        raise ValueError(f"not a list of numbers: {text!r}") from None
    if not out or any(v <= 0 for v in out):
        raise ValueError(f"learning rates must be positive numbers, got {text!r}")
    return out
