"""DINO: reference value, gradients (student and prototypes) and center; two workers equal one."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_state_round_trip, assert_two_processes_match_single, batch, close, leaf

HP = {"n_prototypes": 32, "dim": 16}


def _reference(teacher, student, weight, center, tt=0.04, ts=0.1, m=0.9):
    w = weight / weight.norm(dim=1, keepdim=True)
    s = student / student.norm(dim=1, keepdim=True) @ w.T / ts
    with torch.no_grad():
        t_logits = teacher / teacher.norm(dim=1, keepdim=True) @ w.T
        q = torch.softmax((t_logits - center) / tt, dim=1)
    value = -(q * torch.log_softmax(s, dim=1)).sum(dim=1).mean()
    return value, m * center + (1 - m) * t_logits.mean(dim=0, keepdim=True)


def test_two_steps_match_reference_with_gradients():
    loss = get_loss("DINO", **HP).double()
    weight, center = leaf(loss.prototypes.weight), torch.zeros(1, 32, dtype=torch.float64)
    for seed in (39, 40):
        b = batch(seed=seed)
        t1, s1, s2 = leaf(b["teacher"]), leaf(b["student"]), leaf(b["student"])
        value = loss(t1, s1)
        value.backward()
        ref, center = _reference(b["teacher"], s2, weight, center)
        ref.backward()
        close(value, ref, tol=1e-5)
        close(s1.grad, s2.grad, tol=1e-5)
        close(loss.prototypes.weight.grad, weight.grad, tol=1e-5)
        close(loss.center, center, tol=1e-5)
        assert t1.grad is None
        loss.zero_grad()
        weight.grad = None


def test_closed_form_uniform_prototypes():
    # all prototypes equal -> every distribution is uniform -> cross-entropy log(K)
    loss = get_loss("DINO", n_prototypes=8, dim=4).double()
    with torch.no_grad():
        loss.prototypes.weight.copy_(torch.ones(8, 4))
    b = batch(seed=41, d=4)
    assert loss(b["teacher"], b["student"]).item() == pytest.approx(torch.log(torch.tensor(8.0)).item())


def test_lazy_dim_and_dim_mismatch():
    b = batch(seed=42)
    loss = get_loss("DINO", n_prototypes=8).double()
    loss(b["teacher"], b["student"])
    assert loss.prototypes.weight.shape == (8, 16)
    with pytest.raises(ValueError, match="DINO"):
        loss(b["teacher"], b["student"][:, :8])


def test_two_processes_match_single_process():
    assert_two_processes_match_single("DINO", HP, [batch(8, 16, seed=43), batch(8, 16, seed=44)])


def test_state_round_trip():
    assert_state_round_trip("DINO", {"n_prototypes": 32}, [batch(seed=45), batch(seed=46), batch(seed=47)])


def test_eval_mode_leaves_center_unchanged():
    loss = get_loss("DINO", **HP).double().eval()
    b = batch(seed=66)
    loss(b["teacher"], b["student"])
    assert torch.equal(loss.center, torch.zeros(1, 32, dtype=torch.float64))
