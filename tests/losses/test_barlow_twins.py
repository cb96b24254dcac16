"""Barlow Twins: reference with torch BatchNorm1d; two workers equal one process."""

import torch
from torch import nn

from raykd.losses import get_loss

from .helpers import assert_two_processes_match_single, assert_value_and_grads_match, batch, close


def _reference(teacher, student, lambd=0.0051):
    bn = nn.BatchNorm1d(student.shape[1], affine=False).double().train()
    c = bn(student).T @ bn(teacher) / student.shape[0]
    eye = torch.eye(c.shape[0], dtype=torch.bool)
    return ((c[eye] - 1) ** 2).sum() + lambd * (c[~eye] ** 2).sum()


def test_value_and_gradients_match_reference():
    b = batch(seed=9)
    assert_value_and_grads_match(get_loss("BarlowTwins"), _reference, b["teacher"], b["student"])


def test_lambda():
    b = batch(seed=10)
    value = get_loss("BarlowTwins", lambd=0.5)(b["teacher"], b["student"])
    close(value, _reference(b["teacher"], b["student"], 0.5), tol=1e-5)


def test_two_processes_match_single_process():
    assert_two_processes_match_single("BarlowTwins", {}, [batch(8, 16, seed=11)])
