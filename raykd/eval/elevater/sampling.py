"""Few-shot subsets and the train/validation split, as ELEVATER makes them.

:func:`sample_few_shot` is the ``vision-datasets`` package's ``DatasetManifest.sample_few_shot_subset``
(which the toolkit calls with ``NUM_SAMPLES_PER_CLASS`` and ``RANDOM_SEED_SAMPLING``): shuffle the images
with ``random.Random(seed)``, then greedily keep an image while its classes are under ``shots``. A
multi-class set gets exactly ``min(shots, available)`` images per class; a multi-label set roughly that.

:func:`split_train_val` carves the validation set used by the hyper-parameter search out of the (few-shot)
training set: per class ``ceil(0.2 * n_c)`` images, drawn at random with ``seed`` (the toolkit takes the first
ones of each class; the split here is random, as raykd's other probes do). Multi-label sets take images
greedily until every class has ``ceil(0.2 * positives)`` validation positives.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np


def sample_few_shot(labels: Sequence[Sequence[int]], num_classes: int, shots: int, seed: int) -> np.ndarray:
    """Indices (sorted) of a few-shot subset: ``labels`` are the class ids of each image.

    Negative images (no label) are kept up to ``shots``. Raises ValueError if ``shots < 1``.
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    counts, negatives, picked = [0] * num_classes, 0, []
    for i in order:
        ids = labels[i]
        if not ids:
            if negatives < shots:
                negatives += 1
                picked.append(i)
            continue
        have = [counts[c] for c in ids]
        if min(have) >= shots:
            continue
        if min(have) <= shots / 2 or max(have) <= 1.5 * shots:
            picked.append(i)
            for c in ids:
                counts[c] += 1
        if min(counts) >= shots:
            break
    return np.asarray(sorted(picked), dtype=np.int64)


def split_train_val(labels: Sequence[Sequence[int]], num_classes: int, val_fraction: float = 0.2,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), both sorted; see the module docstring for how."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(labels))
    multilabel = any(len(ids) != 1 for ids in labels)
    val: list[int] = []
    if not multilabel:
        by_class: dict[int, list[int]] = {}
        for i in order:
            by_class.setdefault(labels[i][0], []).append(int(i))
        for members in by_class.values():
            val += members[:math.ceil(len(members) * val_fraction)]
    else:
        positives = np.zeros(num_classes)
        for ids in labels:
            positives[list(ids)] += 1
        need = np.ceil(positives * val_fraction)
        for i in order:
            if (need <= 0).all():
                break
            ids = list(labels[i])
            if ids and (need[ids] > 0).any():
                val.append(int(i))
                need[ids] -= 1
    val_set = set(val)
    train = [i for i in range(len(labels)) if i not in val_set]
    return np.asarray(train, dtype=np.int64), np.asarray(sorted(val), dtype=np.int64)
