"""Clustering quality of frozen image features: k-means with k = number of classes, scored against the
labels with normalised / adjusted mutual information and the adjusted Rand index (scikit-learn)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

from raykd.eval.features import FeatureCache, extract_image_features
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task

TASK = "clustering"


def cluster_metrics(features: torch.Tensor | np.ndarray, labels: Any, num_clusters: int, seed: int = 0,
                    n_init: int = 10) -> dict[str, float]:
    """KMeans on ``features [N, D]`` -> bare ``nmi``, ``ami``, ``ari`` against ``labels [N]``."""
    x = torch.as_tensor(features).float().cpu().numpy()
    labels = np.asarray(torch.as_tensor(labels).cpu().numpy())
    pred = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed).fit_predict(x)
    return {"nmi": normalized_mutual_info_score(labels, pred), "ami": adjusted_mutual_info_score(labels, pred),
            "ari": adjusted_rand_score(labels, pred)}


@register_task(TASK, data_kind="classification", modality="image")
def clustering(model: Any, images: Any, labels: Any, classnames: Sequence[str], dataset_name: str,
               seed: int = 0, batch_size: int = 256, cache: FeatureCache | None = None) -> dict[str, float]:
    """k-means (k = C) on the L2-normalised backbone features (``project=False``) of the evaluation images.

    Returns ``clustering/<dataset>/{nmi, ami, ari}``.
    """
    feats = extract_image_features(model, images, batch_size, project=False, normalize=True,
                                   cache=cache, key=(dataset_name, "test"))
    return prefixed(TASK, dataset_name, cluster_metrics(feats, labels, len(classnames), seed))
