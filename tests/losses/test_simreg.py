"""SimReg variants: regression between L2-normalised features."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import batch, close, unit


def _reference(name, teacher, student, beta=1.0):
    diff = unit(student) - unit(teacher)
    if name == "SimReg":
        per = diff**2
    elif name == "SimReg-L1":
        per = diff.abs()
    else:
        per = torch.where(diff.abs() < beta, 0.5 * diff**2 / beta, diff.abs() - 0.5 * beta)
    return per.sum() / per.numel()


@pytest.mark.parametrize("name", ["SimReg", "SimReg-L1", "SimReg-SmoothL1"])
def test_matches_reference(name):
    b = batch(seed=3)
    value = get_loss(name)(b["teacher"], b["student"])
    close(value, _reference(name, b["teacher"], b["student"]), tol=1e-5)


def test_smooth_l1_beta():
    b = batch(seed=4)
    value = get_loss("SimReg-SmoothL1", beta=0.05)(b["teacher"], b["student"])
    close(value, _reference("SimReg-SmoothL1", b["teacher"], b["student"], beta=0.05), tol=1e-5)


@pytest.mark.parametrize("name", ["SimReg", "SimReg-L1", "SimReg-SmoothL1"])
def test_closed_form_zero_for_same_direction(name):
    x = torch.randn(4, 8, dtype=torch.float64)
    assert get_loss(name)(x, 3.0 * x).item() == pytest.approx(0.0, abs=1e-12)


def test_dim_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="SimReg.*equal teacher and student dims"):
        get_loss("SimReg")(torch.randn(4, 8), torch.randn(4, 6))
