"""Few-shot sampling picks exactly k per class for each seed, reproducibly; the validation split."""
import math
from collections import Counter

import numpy as np
import pytest

from raykd.eval.elevater.sampling import sample_few_shot, split_train_val

LABELS = [[c] for c in np.random.default_rng(0).integers(0, 7, size=300).tolist()] + [[7]] * 3  # class 7: only 3


@pytest.mark.parametrize("shots", [1, 5, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exactly_k_per_class_reproducibly(shots, seed):
    picked = sample_few_shot(LABELS, 8, shots, seed)
    counts = Counter(LABELS[i][0] for i in picked)
    available = Counter(ids[0] for ids in LABELS)
    assert counts == {c: min(shots, available[c]) for c in range(8)}
    assert len(set(picked.tolist())) == len(picked)
    np.testing.assert_array_equal(picked, sample_few_shot(LABELS, 8, shots, seed))


def test_seeds_draw_different_subsets():
    subsets = {tuple(sample_few_shot(LABELS, 8, 5, seed)) for seed in range(3)}
    assert len(subsets) == 3


def test_multi_label_sampling_keeps_every_class_and_few_negatives():
    rng = np.random.default_rng(1)
    labels = [sorted(set(rng.choice(6, size=int(rng.integers(1, 3)), replace=False).tolist())) for _ in range(200)]
    labels += [[]] * 20
    picked = sample_few_shot(labels, 6, 4, seed=0)
    per_class = Counter(c for i in picked for c in labels[i])
    assert all(per_class[c] >= 4 for c in range(6))
    assert sum(1 for i in picked if not labels[i]) <= 4


def test_shots_must_be_positive():
    with pytest.raises(ValueError, match="shots must be >= 1"):
        sample_few_shot(LABELS, 8, 0, 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_val_split_takes_a_fifth_of_each_class(seed):
    train, val = split_train_val(LABELS, 8, 0.2, seed)
    assert sorted(train.tolist() + val.tolist()) == list(range(len(LABELS)))
    available = Counter(ids[0] for ids in LABELS)
    assert Counter(LABELS[i][0] for i in val) == {c: math.ceil(0.2 * n) for c, n in available.items()}
    again = split_train_val(LABELS, 8, 0.2, seed)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, split_train_val(LABELS, 8, 0.2, seed + 7)[1])


def test_train_val_split_of_five_shots_keeps_four():
    labels = [[c] for c in range(4) for _ in range(5)]
    train, val = split_train_val(labels, 4, 0.2, 0)
    assert Counter(labels[i][0] for i in train) == {c: 4 for c in range(4)} and len(val) == 4


def test_multi_label_val_split_covers_each_class():
    labels = [[0, 1], [1], [2], [0], [1, 2], [0, 2], [], [2], [0], [1]]
    train, val = split_train_val(labels, 3, 0.2, 0)
    covered = Counter(c for i in val for c in labels[i])
    assert all(covered[c] >= 1 for c in range(3)) and set(train) | set(val) == set(range(10))
