"""VICReg: reference value and gradients; two workers equal one process on the global batch."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_two_processes_match_single, assert_value_and_grads_match, batch, close, unit


def _reference(teacher, student, inv=25.0, var=25.0, cov=1.0, eps=1e-4, normalize=True):
    if normalize:  # as ITRA's VICReg: rows are L2-normalised first
        teacher, student = unit(teacher), unit(student)
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


def test_closed_form_zero_after_row_normalisation():
    # one dim: rows normalise to +-1, a zero-mean column with std sqrt(4/3) > 1 and no covariance,
    # so every term is 0 although the rows are scaled differently on the two sides
    x = torch.tensor([[2.0], [-0.5], [3.0], [-1.0]], dtype=torch.float64)
    scales = torch.tensor([[5.0], [0.1], [2.0], [7.0]], dtype=torch.float64)
    assert get_loss("VICReg")(x, scales * x).item() == pytest.approx(0.0, abs=1e-12)


def test_two_processes_match_single_process():
    assert_two_processes_match_single("VICReg", {}, [batch(8, 16, seed=8)])


def test_unnormalised_features_as_in_the_paper():
    b = batch(seed=78)
    value = get_loss("VICReg", normalize=False)(b["teacher"], b["student"])
    close(value, _reference(b["teacher"], b["student"], normalize=False), tol=1e-5)
    # +-1 columns with zero mean, std > 1 and zero covariance: every raw-feature term is 0
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert get_loss("VICReg", normalize=False)(x, x).item() == pytest.approx(0.0, abs=1e-12)
