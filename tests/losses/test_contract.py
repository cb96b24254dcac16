"""Every registered loss honours the common contract (new losses are covered on registration)."""

import inspect

import pytest
import torch

from raykd.losses import DistillLoss, get_loss, list_losses, loss_class
from raykd.losses.registry import FLAGS


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(8, 16, generator=g).requires_grad_(True)
    student = torch.randn(8, 16, generator=g).requires_grad_(True)
    labels = torch.randint(0, 4, (8,), generator=g)
    return teacher, student, {"logit_scale": torch.tensor(1 / 0.07), "labels": labels}


@pytest.mark.parametrize("name", list_losses())
def test_loss_contract(name):
    cls = loss_class(name)
    assert issubclass(cls, DistillLoss) and cls.name == name
    assert cls.__doc__ and cls.paper, "docstring and paper citation are required"
    assert all(isinstance(getattr(cls, flag), bool) for flag in FLAGS)
    params = inspect.signature(cls.forward).parameters
    assert list(params)[:3] == ["self", "teacher", "student"]
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("logit_scale", "labels"))

    loss = get_loss(name)
    teacher, student, kwargs = _inputs()
    value = loss(teacher, student, **kwargs)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    if cls.uni_directional:
        assert teacher.grad is None


@pytest.mark.parametrize("name", list_losses())
def test_state_dict_loads_into_fresh_instance(name):
    loss = get_loss(name)
    teacher, student, kwargs = _inputs(1)
    loss(teacher, student, **kwargs)
    fresh = get_loss(name)
    fresh.load_state_dict(loss.state_dict())
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, loss.state_dict()[key])
