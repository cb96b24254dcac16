"""Losses are computed in fp32 whatever the caller's autocast (bf16 lost ties in SEED, BarlowTwins'
mantissas and ~0.5 of InfoNCE's logits at scale 100)."""
import copy

import pytest
import torch

from raykd.losses import get_loss, list_losses


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(8, 16, generator=g)
    student = teacher + 0.01 * torch.randn(8, 16, generator=g)  # near-duplicates: where bf16 rounds to ties
    return teacher, student, {"logit_scale": torch.tensor(100.0), "labels": torch.randint(0, 4, (8,), generator=g)}


@pytest.mark.parametrize("name", list_losses())
def test_loss_under_bf16_autocast_equals_its_fp32_value(name):
    loss = get_loss(name)
    teacher, student, kwargs = _inputs()
    under_autocast = copy.deepcopy(loss)  # stateful losses (queues, centers) start from the same state
    reference = loss(teacher.clone().requires_grad_(True), student.clone().requires_grad_(True), **kwargs)
    s = student.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = under_autocast(teacher.clone().requires_grad_(True), s, **kwargs)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)
    value.backward()
    assert s.grad.dtype == torch.float32 and torch.isfinite(s.grad).all()


def test_bf16_features_are_cast_up_with_their_gradient():
    teacher, student, kwargs = _inputs()
    s = student.to(torch.bfloat16).requires_grad_(True)
    value = get_loss("InfoNCE")(teacher.to(torch.bfloat16), s, **kwargs)
    value.backward()
    assert value.dtype == torch.float32 and s.grad.dtype == torch.bfloat16
    torch.testing.assert_close(value, get_loss("InfoNCE")(teacher.to(torch.bfloat16).float(), s.detach().float(), **kwargs))
