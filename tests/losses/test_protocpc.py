"""ProtoCPC: reference value and prior update; two workers equal one process."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_state_round_trip, assert_two_processes_match_single, batch, close

HP = {"n_prototypes": 32, "dim": 16}


def _reference(teacher, student, weight, prior, tt=0.04, ts=0.1, m=0.9):
    w = weight / weight.norm(dim=1, keepdim=True)
    s = student / student.norm(dim=1, keepdim=True) @ w.T / ts
    q = torch.softmax(teacher / teacher.norm(dim=1, keepdim=True) @ w.T / tt, dim=1)
    # -sum_k q_k log( exp(s_k) / sum_j prior_j exp(s_j) )
    log_ratio = s - torch.log((prior * torch.exp(s)).sum(dim=1, keepdim=True))
    value = -(q * log_ratio).sum(dim=1).mean()
    # the authors' code keeps the prior summing to K: uniform is all ones
    return value, m * prior + (1 - m) * q.shape[1] * q.mean(dim=0, keepdim=True)


def test_two_steps_match_reference():
    loss = get_loss("ProtoCPC", **HP).double()
    weight, prior = loss.prototypes.weight.detach().clone(), torch.ones(1, 32, dtype=torch.float64)
    for seed in (48, 49):
        b = batch(seed=seed)
        value = loss(b["teacher"], b["student"])
        ref, prior = _reference(b["teacher"], b["student"], weight, prior)
        close(value, ref, tol=1e-5)
        close(loss.prior, prior, tol=1e-5)


def test_uniform_prior_gives_dinos_cross_entropy():
    b = batch(seed=50)
    cpc = get_loss("ProtoCPC", **HP).double()
    dino = get_loss("DINO", **HP).double()  # same seeded prototypes; zero center = no centering
    expected = dino(b["teacher"], b["student"]).item()
    assert cpc(b["teacher"], b["student"]).item() == pytest.approx(expected)


def test_teacher_gets_no_gradient():
    b = batch(seed=51)
    t = b["teacher"].clone().requires_grad_(True)
    get_loss("ProtoCPC", **HP).double()(t, b["student"].requires_grad_(True)).backward()
    assert t.grad is None


def test_two_processes_match_single_process():
    assert_two_processes_match_single("ProtoCPC", HP, [batch(8, 16, seed=52), batch(8, 16, seed=53)])


def test_state_round_trip():
    batches = [batch(seed=54), batch(seed=55), batch(seed=56)]
    assert_state_round_trip("ProtoCPC", {"n_prototypes": 32}, batches)
