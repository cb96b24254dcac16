"""Weighted k-nearest-neighbour classification on frozen, L2-normalised backbone features (Wu et al., 2018,
"Unsupervised Feature Learning via Non-Parametric Instance Discrimination"; the DINO evaluation, Caron et al.,
2021): each of the k most similar training samples votes for its class with weight ``exp(sim / T)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from raykd.eval.features import FeatureCache, extract_image_features, iter_chunks
from raykd.eval.metrics import classification_metrics, prefixed
from raykd.eval.tasks._registry import register_task

TASK = "knn"


def knn_votes(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int,
              k: int = 20, temperature: float = 0.07, chunk_size: int = 1024) -> torch.Tensor:
    """Class votes ``[M, C]`` for ``test_x [M, D]`` from ``train_x [N, D]`` / ``train_y [N]`` (features are
    L2-normalised here; ``k`` is capped at N)."""
    train_x, test_x = F.normalize(train_x.float(), dim=-1), F.normalize(test_x.float(), dim=-1)
    train_y = torch.as_tensor(train_y, dtype=torch.int64)
    k = min(k, train_x.shape[0])
    votes = torch.zeros(test_x.shape[0], num_classes)
    for rows in iter_chunks(test_x.shape[0], chunk_size):
        sims, idx = (test_x[rows] @ train_x.T).topk(k, dim=1)
        votes[rows].scatter_add_(1, train_y[idx], (sims / temperature).exp())
    return votes


@register_task(TASK, data_kind="classification", modality="image", aliases=("k-nn",))
def knn(model: Any, train_images: Any, train_labels: Any, images: Any, labels: Any, classnames: Sequence[str],
        dataset_name: str, k: int = 20, temperature: float = 0.07, batch_size: int = 256,
        cache: FeatureCache | None = None) -> dict[str, float]:
    """k-NN accuracy of the frozen image backbone (``project=False``), train set as the memory bank.

    Returns ``knn/<dataset>/{top1, top5 (C >= 5), mean_per_class_recall}``.
    """
    train_x = extract_image_features(model, train_images, batch_size, project=False, normalize=True,
                                     cache=cache, key=(dataset_name, "train"))
    test_x = extract_image_features(model, images, batch_size, project=False, normalize=True,
                                    cache=cache, key=(dataset_name, "test"))
    votes = knn_votes(train_x, torch.as_tensor(train_labels), test_x, len(classnames), k, temperature)
    return prefixed(TASK, dataset_name, classification_metrics(votes, labels, len(classnames)))
