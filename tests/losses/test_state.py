"""Building blocks in raykd/losses/_state.py: FIFO queue with wrap-around, prototype layer."""

import torch

from raykd.losses._state import CosinePrototypes, FeatureQueue


def test_queue_starts_as_seeded_unit_vectors():
    a, b = FeatureQueue(5, seed=3), FeatureQueue(5, seed=3)
    bank = a.features(torch.zeros(2, 4, dtype=torch.float64))
    assert bank.shape == (5, 4) and bank.dtype == torch.float64
    torch.testing.assert_close(bank.norm(dim=1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(bank, b.features(torch.zeros(1, 4, dtype=torch.float64)))


def test_queue_fifo_wraps_around_when_size_does_not_divide_batch():
    q = FeatureQueue(10)
    q.features(torch.zeros(1, 3))
    first, second = torch.arange(24.0).view(8, 3), -torch.arange(24.0).view(8, 3)
    q.push(first)
    q.push(second)
    assert int(q.ptr) == 6
    torch.testing.assert_close(q.bank[8:], second[:2])
    torch.testing.assert_close(q.bank[:6], second[2:])
    torch.testing.assert_close(q.bank[6:8], first[6:])


def test_queue_batch_larger_than_queue_keeps_newest():
    q = FeatureQueue(4)
    q.features(torch.zeros(1, 2))
    x = torch.arange(12.0).view(6, 2)
    q.push(x)  # positions 0,1,2,3,0,1 -> the last four rows win
    assert int(q.ptr) == 2
    torch.testing.assert_close(q.bank, torch.stack([x[4], x[5], x[2], x[3]]))


def test_features_is_a_copy():
    q = FeatureQueue(3)
    bank = q.features(torch.zeros(1, 2))
    q.push(torch.ones(3, 2))
    assert not torch.equal(bank, q.bank)


def test_prototypes_lazy_and_eager_agree():
    x = torch.randn(4, 6)
    lazy, eager = CosinePrototypes(5, seed=1), CosinePrototypes(5, dim=6, seed=1)
    torch.testing.assert_close(lazy(x), eager(x))
    w = torch.nn.functional.normalize(eager.weight, dim=1)
    torch.testing.assert_close(eager(x), torch.nn.functional.normalize(x, dim=1) @ w.T)


def test_prototypes_load_into_unsized_layer():
    src = CosinePrototypes(5, dim=6, seed=2)
    dst = CosinePrototypes(5)
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.weight, src.weight)
