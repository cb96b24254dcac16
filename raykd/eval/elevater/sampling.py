"""Few-shot subsets and the train/validation split, as ELEVATER makes them.

:func:`sample_few_shot` is the ``vision-datasets`` package's ``DatasetManifest.sample_few_shot_subset``
(which the toolkit calls with ``NUM_SAMPLES_PER_CLASS`` and ``RANDOM_SEED_SAMPLING``): shuffle the images
with ``random.Random(seed)``, then greedily keep an image while its classes are under ``shots``. A
multi-class set gets exactly ``min(shots, available)`` images per class; a multi-label set roughly that. The subset is in the order the images were picked (the manifest the toolkit
goes on with); ``sort=True`` gives the indices sorted.

:func:`split_train_val` carves the validation set used by the hyper-parameter search out of the (few-shot)
training set:

- ``how="first"`` (protocol ``toolkit``): ``train_val_dataset`` in Elevater_Toolkit_IC
  ``vision_benchmark/evaluation/feature.py``: per class the first ``ceil(0.2 * n_c)`` images in manifest
  order; a multi-label set repeatedly takes the first image holding the lowest class that still needs
  validation positives (``ceil(0.2 * positives)`` per class), until none does;
- ``how="random"`` (protocol ``clean``): the same counts, drawn at random with ``seed``.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np


def sample_few_shot(labels: Sequence[Sequence[int]], num_classes: int, shots: int, seed: int,
                    sort: bool = True) -> np.ndarray:
    """Indices of a few-shot subset (sorted, or in pick order with ``sort=False``): ``labels`` are the class
    ids of each image.

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
    return np.asarray(sorted(picked) if sort else picked, dtype=np.int64)


SPLITS = ("first", "random")


def _split_first_multilabel(labels: Sequence[Sequence[int]], num_classes: int, val_fraction: float) -> list[int]:
    """The toolkit's greedy multi-label loop, on a multi-hot matrix it zeroes row by row as it takes them."""
    hot = np.zeros((len(labels), num_classes))
    for i, ids in enumerate(labels):
        hot[i, list(ids)] = 1
    need = np.ceil(hot.sum(axis=0) * val_fraction)
    val: list[int] = []
    pending = np.flatnonzero(need > 0)
    while pending.size > 0:
        taken = int(np.flatnonzero(hot[:, pending[0]] > 0)[0])
        val.append(taken)
        need -= hot[taken]
        hot[taken] = 0
        pending = np.flatnonzero(need > 0)
    return val


def split_train_val(labels: Sequence[Sequence[int]], num_classes: int, val_fraction: float = 0.2,
                    seed: int = 0, how: str = "random") -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), both sorted; ``how``: ``first`` | ``random`` (module docstring)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if how not in SPLITS:
        raise ValueError(f"unknown validation split {how!r}; choose from {SPLITS}")
    multilabel = any(len(ids) != 1 for ids in labels)
    if how == "first" and multilabel:
        val_set = set(_split_first_multilabel(labels, num_classes, val_fraction))
        return (np.asarray([i for i in range(len(labels)) if i not in val_set], dtype=np.int64),
                np.asarray(sorted(val_set), dtype=np.int64))
    order = (np.arange(len(labels)) if how == "first" else np.random.default_rng(seed).permutation(len(labels)))
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
