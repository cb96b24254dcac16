"""SigLIP: equal to open_clip's SigLipLoss at world size 1 and 2 (value and gradients)."""

import math

import pytest
import torch
import torch.nn.functional as F

from raykd.losses import get_loss

from .dist_utils import my_half, run_in_two_processes
from .helpers import (
    assert_state_round_trip,
    assert_two_processes_match_single,
    batch,
    close,
    leaf,
    open_clip_loss,
)


def _ours(teacher, student, **hparams):
    loss = get_loss("SigLIP", **hparams).double()
    t, s = leaf(teacher), leaf(student)
    value = loss(t, s)
    value.backward()
    return value.detach(), t.grad, s.grad, loss.logit_scale.grad, loss.logit_bias.grad


def _open_clip(teacher, student, rank=0, world_size=1, dist_impl=None, scale=math.log(10), bias=-10.0):
    ref = open_clip_loss().SigLipLoss(rank=rank, world_size=world_size, dist_impl=dist_impl)
    t, s = leaf(teacher), leaf(student)
    ls, lb = leaf(torch.tensor(scale, dtype=torch.float64)), leaf(torch.tensor(bias, dtype=torch.float64))
    value = ref(F.normalize(s, dim=-1), F.normalize(t, dim=-1), ls.exp(), lb)
    value.backward()
    return value.detach(), t.grad, s.grad, ls.grad, lb.grad


def test_matches_open_clip_world_size_1():
    b = batch(seed=12)
    for a, r in zip(_ours(b["teacher"], b["student"]), _open_clip(b["teacher"], b["student"])):
        close(a, r)


def test_hparams_set_initial_scale_and_bias():
    b = batch(seed=13)
    ours = _ours(b["teacher"], b["student"], init_logit_scale=1.5, init_logit_bias=-3.0)
    for a, r in zip(ours, _open_clip(b["teacher"], b["student"], scale=1.5, bias=-3.0)):
        close(a, r)


def test_closed_form_orthogonal_pairs():
    x = torch.eye(3, dtype=torch.float64)
    loss = get_loss("SigLIP", init_logit_scale=0.0, init_logit_bias=0.0).double()
    # logits: 1 on the diagonal, 0 elsewhere -> (3 * softplus(-1) + 6 * softplus(0)) / 3
    expected = (3 * math.log1p(math.exp(-1)) + 6 * math.log(2)) / 3
    assert loss(x, x).item() == pytest.approx(expected)


def _dist_vs_open_clip(teacher, student):
    rank, out = torch.distributed.get_rank(), {"ours": _ours(my_half(teacher), my_half(student))}
    for impl in ("gather", "bidir"):
        out[impl] = _open_clip(my_half(teacher), my_half(student), rank=rank, world_size=2, dist_impl=impl)
    return out


def test_matches_open_clip_world_size_2():
    b = batch(8, 16, seed=14)
    per_rank = run_in_two_processes(_dist_vs_open_clip, b["teacher"], b["student"])
    for impl in ("gather", "bidir"):
        for r in per_rank:
            for a, ref in zip(r["ours"][:3], r[impl][:3]):  # value, teacher grad, student grad
                close(a, ref)
        for i in (3, 4):  # scale/bias grads: ours are averaged over ranks (sync_grad)
            mean_ref = (per_rank[0][impl][i] + per_rank[1][impl][i]) / 2
            close(per_rank[0]["ours"][i], mean_ref)
            close(per_rank[1]["ours"][i], mean_ref)


def test_two_processes_match_single_process():
    assert_two_processes_match_single("SigLIP", {}, [batch(8, 16, seed=15)])


def test_state_round_trip():
    assert_state_round_trip("SigLIP", {"init_logit_scale": 1.0}, [batch(seed=16), batch(seed=17)])
