"""RKD: distance and angle terms against a loop-based reference (value and gradients)."""

import itertools

import torch

from raykd.losses import get_loss

from .helpers import assert_value_and_grads_match, batch, close, unit


def _smooth_l1(a, b):
    d = (a - b).abs()
    return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()


def _distances(x):
    n = x.shape[0]
    pairs = itertools.product(range(n), repeat=2)
    d = torch.stack([torch.linalg.norm(x[i] - x[j]) if i != j else x.new_zeros(()) for i, j in pairs])
    return d / (d.sum() / (n * (n - 1)))


def _angles(x):
    n, out = x.shape[0], []
    for i, j, k in itertools.product(range(n), repeat=3):
        u, v = x[j] - x[i], x[k] - x[i]
        nu, nv = torch.linalg.norm(u), torch.linalg.norm(v)
        out.append(u @ v / (nu * nv) if j != i and k != i else x.new_zeros(()))
    return torch.stack(out)


def _reference(teacher, student, wd=0.5, wa=1.0, normalize=True):
    if normalize:  # as ITRA's RKD
        teacher, student = unit(teacher), unit(student)
    distance = _smooth_l1(_distances(student), _distances(teacher))
    return wd * distance + wa * _smooth_l1(_angles(student), _angles(teacher))


def test_value_and_gradients_match_reference():
    b = batch(5, 7, seed=5, d_student=4)  # dims may differ
    assert_value_and_grads_match(get_loss("RKD"), _reference, b["teacher"], b["student"])


def test_weights():
    teacher, student = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    value = get_loss("RKD", distance_weight=2.0, angle_weight=0.0)(teacher, student)
    close(value, 2 * _smooth_l1(_distances(unit(student)), _distances(unit(teacher))), tol=1e-5)


def test_closed_form_zero_for_scaled_copy():
    x = torch.randn(6, 5, dtype=torch.float64)
    assert get_loss("RKD")(x, 4.0 * x).item() < 1e-12


def test_closed_form_zero_for_rows_scaled_differently():
    # rows are L2-normalised first, so a per-row positive rescaling changes nothing
    x = torch.randn(6, 5, dtype=torch.float64)
    scales = torch.tensor([[0.5], [2.0], [3.0], [0.1], [1.0], [7.0]], dtype=torch.float64)
    assert get_loss("RKD")(x, scales * x).item() < 1e-12


def test_unnormalised_features_as_in_the_paper():
    b = batch(seed=77)
    value = get_loss("RKD", normalize=False)(b["teacher"], b["student"])
    close(value, _reference(b["teacher"], b["student"], normalize=False), tol=1e-5)
    x = torch.randn(6, 5, dtype=torch.float64)
    scales = torch.tensor([[0.5], [2.0], [3.0], [0.1], [1.0], [7.0]], dtype=torch.float64)
    assert get_loss("RKD", normalize=False)(x, scales * x).item() > 1e-3  # per-row scale now matters
