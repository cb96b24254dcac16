"""InfoNCE: equal to open_clip's ClipLoss (value and gradients) at world size 1 and 2."""

import pytest
import torch

from raykd.losses import get_loss

from .dist_utils import my_half, run_in_two_processes
from .helpers import features, leaf, open_clip_loss

MODES = [(True, True), (True, False), (False, True), (False, False)]


def _value_and_grads(loss_fn, teacher, student, scale):
    t, s, ls = leaf(teacher), leaf(student), leaf(scale)
    value = loss_fn(t, s, ls)
    value.backward()
    return value.detach(), t.grad, s.grad, ls.grad


def _ours(local_loss, gather_with_grad):
    loss = get_loss("InfoNCE", local_loss=local_loss, gather_with_grad=gather_with_grad)
    return lambda t, s, ls: loss(t, s, logit_scale=ls)


def _clip(local_loss, gather_with_grad, rank=0, world_size=1):
    ref = open_clip_loss().ClipLoss(
        local_loss=local_loss,
        gather_with_grad=gather_with_grad,
        cache_labels=False,
        rank=rank,
        world_size=world_size,
    )
    norm = torch.nn.functional.normalize
    return lambda t, s, ls: ref(image_features=norm(s, dim=-1), text_features=norm(t, dim=-1), logit_scale=ls)


def _assert_all_close(a, b, tol=1e-6):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("local_loss,gather_with_grad", MODES)
def test_matches_open_clip_world_size_1(local_loss, gather_with_grad):
    teacher, student = features(8, 16, seed=1)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    ours = _value_and_grads(_ours(local_loss, gather_with_grad), teacher, student, scale)
    ref = _value_and_grads(_clip(local_loss, gather_with_grad), teacher, student, scale)
    _assert_all_close(ours, ref)


def test_closed_form_perfect_alignment():
    # orthogonal one-hot pairs: every logit is 0 except the diagonal (= scale)
    x = torch.eye(4, dtype=torch.float64)
    value = get_loss("InfoNCE")(x, x, logit_scale=torch.tensor(10.0, dtype=torch.float64))
    expected = -torch.log(torch.exp(torch.tensor(10.0)) / (torch.exp(torch.tensor(10.0)) + 3)).double()
    torch.testing.assert_close(value, expected)


def test_needs_logit_scale():
    t, s = features(4, 8)
    with pytest.raises(ValueError, match="InfoNCE.*logit_scale"):
        get_loss("InfoNCE")(t, s)


def _dist_all_modes(teacher, student, scale):
    rank, out = torch.distributed.get_rank(), {}
    t, s = my_half(teacher), my_half(student)
    for mode in MODES:
        out[mode] = (
            _value_and_grads(_ours(*mode), t, s, scale),
            _value_and_grads(_clip(*mode, rank=rank, world_size=2), t, s, scale),
        )
    return out


def test_matches_open_clip_world_size_2():
    teacher, student = features(12, 16, seed=2)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    per_rank = run_in_two_processes(_dist_all_modes, teacher, student, scale)
    single = _value_and_grads(_ours(False, True), teacher, student, scale)
    for mode in MODES:
        for rank_out in per_rank:
            _assert_all_close(*rank_out[mode])
    for mode in [(False, True), (True, True)]:  # exact-gradient modes vs one process on the whole batch
        values = torch.stack([r[mode][0][0] for r in per_rank])
        torch.testing.assert_close(values.mean(), single[0], rtol=1e-6, atol=1e-6)
        for i in (1, 2):  # rank-local input grads are world_size x the global-loss grads of its rows
            grads = torch.cat([r[mode][0][i] for r in per_rank])
            torch.testing.assert_close(grads / 2, single[i], rtol=1e-6, atol=1e-6)
        scale_grad = torch.stack([r[mode][0][3] for r in per_rank]).mean()  # what DDP averages
        torch.testing.assert_close(scale_grad, single[3], rtol=1e-6, atol=1e-6)
