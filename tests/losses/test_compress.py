"""CompRess-1q/-2q: KL over memory-bank similarities; FIFO banks; two workers equal one process."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_state_round_trip, assert_two_processes_match_single, batch, close, leaf, unit


def _kl(t, s, t_bank, s_bank, temperature):
    total = 0.0
    for ti, si in zip(t, s):
        pt = torch.exp(ti @ t_bank.T / temperature)
        pt = pt / pt.sum()
        ps = torch.exp(si @ s_bank.T / temperature)
        ps = ps / ps.sum()
        total = total + (pt * torch.log(pt / ps)).sum()
    return total / len(t)


@pytest.mark.parametrize("name", ["CompRess-1q", "CompRess-2q"])
def test_second_step_matches_reference_on_filled_bank(name):
    first, second = batch(seed=22), batch(seed=23)
    loss = get_loss(name, queue_size=8, temperature=0.5).double()
    loss(first["teacher"], first["student"])  # fills the bank(s) with the whole first batch
    t_bank = unit(first["teacher"])
    s_bank = unit(first["student"]) if name == "CompRess-2q" else t_bank
    close(loss.teacher_queue.bank, t_bank)
    t1, s1, t2, s2 = (leaf(second[k]) for k in ("teacher", "student", "teacher", "student"))
    value = loss(t1, s1)
    value.backward()
    # as ITRA: only CompRess-1q is uni-directional, CompRess-2q sends the KL's gradient to the teacher too
    teacher_ref = unit(t2) if name == "CompRess-2q" else unit(t2).detach()
    expected = _kl(teacher_ref, unit(s2), t_bank, s_bank, 0.5)
    expected.backward()
    close(value, expected, tol=1e-5)
    close(s1.grad, s2.grad, tol=1e-5)
    close(t1.grad, t2.grad, tol=1e-5)
    assert (t1.grad is None) == (name == "CompRess-1q")


def test_two_queue_variant_accepts_different_dims():
    b = batch(seed=24, d_student=12)
    assert torch.isfinite(get_loss("CompRess-2q", queue_size=16)(b["teacher"], b["student"]))
    with pytest.raises(ValueError, match="CompRess-1q"):
        get_loss("CompRess-1q", queue_size=16)(b["teacher"], b["student"])


def test_teacher_gets_no_gradient():
    b = batch(seed=25)
    t = b["teacher"].clone().requires_grad_(True)
    get_loss("CompRess-1q", queue_size=16).double()(t, b["student"].requires_grad_(True)).backward()
    assert t.grad is None


@pytest.mark.parametrize("name", ["CompRess-1q", "CompRess-2q"])
def test_two_processes_match_single_process(name):
    batches = [batch(8, 16, seed=26), batch(8, 16, seed=27)]  # queue 10: the pointer wraps around
    assert_two_processes_match_single(name, {"queue_size": 10}, batches)


@pytest.mark.parametrize("name", ["CompRess-1q", "CompRess-2q"])
def test_state_round_trip(name):
    assert_state_round_trip(name, {"queue_size": 10}, [batch(seed=28), batch(seed=29), batch(seed=30)])
