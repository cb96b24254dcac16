"""Metric helpers shared by the evaluation tasks, and the metric key convention.

Every task returns a flat dict whose keys are ``<task>/<dataset>/<metric>`` (built by :func:`prefixed`);
task and data set names never contain ``/``. Accuracies and recalls are fractions in [0, 1];
correlations (STS, word similarity) are Spearman x 100, as SentEval reports them.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, top_k_accuracy_score


def metric_key(task: str, dataset: str, metric: str) -> str:
    """``<task>/<dataset>/<metric>``. Raises ValueError if task or dataset contains ``/``."""
    for part in (task, dataset):
        if "/" in part or not part:
            raise ValueError(f"task and dataset names must be non-empty and free of '/': {part!r}")
    return f"{task}/{dataset}/{metric}"


def prefixed(task: str, dataset: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """Bare metric names -> ``<task>/<dataset>/<metric>`` keys, values as Python floats."""
    return {metric_key(task, dataset, name): float(value) for name, value in metrics.items()}


def split_key(key: str) -> tuple[str, str, str]:
    """Inverse of :func:`metric_key`: ``(task, dataset, metric)``."""
    task, dataset, metric = key.split("/", 2)
    return task, dataset, metric


def classification_metrics(scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                           num_classes: int | None = None) -> dict[str, float]:
    """Scores ``[N, C]`` and integer labels ``[N]`` -> ``top1``, ``top5`` (only when C >= 5) and
    ``mean_per_class_recall`` (scikit-learn's balanced accuracy: recall averaged over classes present)."""
    scores = torch.as_tensor(scores).float().cpu().numpy()
    labels = np.asarray(torch.as_tensor(labels).cpu().numpy(), dtype=np.int64)
    num_classes = num_classes or scores.shape[1]
    preds = scores.argmax(axis=1)
    out = {"top1": accuracy_score(labels, preds)}
    if num_classes >= 5:
        with warnings.catch_warnings():  # k == C is trivially 1.0; sklearn warns about it
            warnings.simplefilter("ignore")
            out["top5"] = top_k_accuracy_score(labels, scores, k=5, labels=np.arange(num_classes))
    with warnings.catch_warnings():  # predicted classes absent from labels are expected
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        out["mean_per_class_recall"] = balanced_accuracy_score(labels, preds)
    return out
