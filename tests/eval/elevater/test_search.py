"""The toolkit's learning-rate x weight-decay search: coarse weight-decay grid, then refinement."""
import math

import numpy as np
import pytest

from raykd.eval.elevater.search import LR_GRID, SearchSpace, parse_grid, search


def bowl(lr: float, wd: float) -> float:
    """Peaks at lr 1e-3 and weight decay 10**2.3 (between grid points 10**2.25 and 10**2.375)."""
    return -(math.log10(wd) - 2.3) ** 2 - (math.log10(lr) + 3) ** 2


def test_grids_are_the_toolkits():
    assert LR_GRID == pytest.approx((1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1))
    space = SearchSpace()
    assert space.coarse_indices == [0, 16, 32, 48, 64, 80, 96]
    np.testing.assert_allclose(space.wd_grid[space.coarse_indices], [1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 1e6])


def test_coarse_then_refinement_finds_the_peak():
    result = search(bowl)
    # coarse picks 1e2 (index 64); steps 8, 4, 2, 1 move it to index 68 (2.5), then 66 (2.25) and keep it
    assert result.lr == pytest.approx(1e-3) and result.weight_decay == pytest.approx(10 ** 2.25)
    assert len(result.trials) == 6 * (7 + 8)  # per lr: 7 coarse + 2 neighbours at each of 4 steps
    first_lr = [t for t in result.trials if t[0] == LR_GRID[0]]
    assert [round(math.log10(t[1]), 3) for t in first_lr[7:]] == [1, 3, 1.5, 2.5, 2.25, 2.75, 2.125, 2.375]


def test_failures_and_nan_score_zero():
    def evaluate(lr, wd):
        if wd > 1:
            raise RuntimeError("diverged")
        return float("nan") if wd < 1e-5 else 1.0 - abs(math.log10(wd)) / 10
    result = search(evaluate, SearchSpace(lrs=(0.1,)))
    assert result.weight_decay == pytest.approx(1.0) and result.score == pytest.approx(1.0)
    assert all(score == 0.0 for _, wd, score in result.trials if wd > 1 or wd < 1e-5)


def test_refinement_stops_at_the_grid_ends():
    result = search(lambda lr, wd: -wd, SearchSpace(lrs=(1.0,)))
    assert result.weight_decay == pytest.approx(1e-6)
    assert len({t[1] for t in result.trials}) == len(result.trials)  # nothing scored twice


def test_parse_grid():
    assert parse_grid("1e-3, 1e-2") == (1e-3, 1e-2)
    with pytest.raises(ValueError, match="positive"):
        parse_grid("0,1")
    with pytest.raises(ValueError, match="not a list of numbers"):
        parse_grid("fast")
    with pytest.raises(ValueError, match="coarse points"):
        SearchSpace(wd_points=10)
