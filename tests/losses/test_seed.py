"""SEED: soft cross-entropy over [own teacher; queue]; two workers equal one process."""

import torch

from raykd.losses import get_loss

from .helpers import assert_state_round_trip, assert_two_processes_match_single, batch, close, unit


def _reference(t, s, bank, ts, tt):
    total = 0.0
    for ti, si in zip(t, s):
        keys = torch.cat([ti[None], bank])
        target = torch.softmax(keys @ ti / tt, dim=0)
        log_pred = torch.log_softmax(keys @ si / ts, dim=0)
        total = total - (target * log_pred).sum()
    return total / len(t)


def test_second_step_matches_reference_on_filled_queue():
    first, second = batch(seed=31), batch(seed=32)
    loss = get_loss("SEED", queue_size=8, student_temperature=0.2, teacher_temperature=0.05).double()
    loss(first["teacher"], first["student"])
    close(loss.queue.bank, unit(first["teacher"]))
    value = loss(second["teacher"], second["student"])
    expected = _reference(unit(second["teacher"]), unit(second["student"]), unit(first["teacher"]), 0.2, 0.05)
    close(value, expected, tol=1e-5)


def test_default_temperatures_are_finite_and_teacher_has_no_grad():
    b = batch(seed=33)
    t, s = b["teacher"].clone().requires_grad_(True), b["student"].clone().requires_grad_(True)
    value = get_loss("SEED", queue_size=32)(t.float(), s.float())
    value.backward()
    assert torch.isfinite(value) and t.grad is None and s.grad is not None


def test_two_processes_match_single_process():
    batches = [batch(8, 16, seed=34), batch(8, 16, seed=35)]  # queue 10: the pointer wraps around
    assert_two_processes_match_single("SEED", {"queue_size": 10}, batches)


def test_state_round_trip():
    assert_state_round_trip("SEED", {"queue_size": 10}, [batch(seed=36), batch(seed=37), batch(seed=38)])


def test_eval_mode_leaves_queue_unchanged():
    loss = get_loss("SEED", queue_size=8).double()
    b = batch(seed=67)
    loss(b["teacher"], b["student"])
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.eval()(batch(seed=68)["teacher"], batch(seed=68)["student"])
    close(loss.state_dict(), before, tol=0)
