"""VICReg: reference value and gradients; two workers equal one process on the global batch."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_two_processes_match_single, assert_value_and_grads_match, batch, close


def _reference(teacher, student, inv=25.0, var=25.0, cov=1.0, eps=1e-4):
    n, d = student.shape
    invariance = ((student - teacher) ** 2).sum() / (n * d)
    variance = sum(torch.relu(1 - torch.sqrt(x.var(dim=0) + eps)).mean() for x in (student, teacher)) / 2
    off = ~torch.eye(d, dtype=torch.bool)
    covariance = sum(torch.cov(x.T)[off].pow(2).sum() / d for x in (student, teacher))
    return inv * invariance + var * variance + cov * covariance


def test_value_and_gradients_match_reference():
    b = batch(seed=6)
    assert_value_and_grads_match(get_loss("VICReg"), _reference, b["teacher"], b["student"])


def test_hparams():
    b = batch(seed=7)
    ours = get_loss("VICReg", invariance_weight=1.0, variance_weight=2.0, covariance_weight=3.0, eps=0.1)
    expected = _reference(b["teacher"], b["student"], 1.0, 2.0, 3.0, 0.1)
    close(ours(b["teacher"], b["student"]), expected, tol=1e-5)


def test_closed_form_identical_unit_variance_decorrelated():
    # +-1 columns with zero mean, std > 1 and zero covariance: only the variance hinge at 0
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert get_loss("VICReg")(x, x).item() == pytest.approx(0.0, abs=1e-12)


def test_two_processes_match_single_process():
    assert_two_processes_match_single("VICReg", {}, [batch(8, 16, seed=8)])
