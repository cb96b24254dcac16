"""ELEVATER's four metrics on predicted probabilities ``[N, C]``, as its toolkit computes them
(``vision_benchmark/evaluation/metric.py`` over the ``vision-evaluation`` package):

- ``accuracy``: top-1 accuracy;
- ``mean-per-class``: recall averaged over the classes present in the labels (scikit-learn's balanced
  accuracy of the arg-max);
- ``11point_mAP`` (multi-label, ``targets`` multi-hot ``[N, C]``): per class, the precision interpolated at
  the 11 recall levels 0, 0.1, ..., 1 (the highest precision at a recall >= that level, on scikit-learn's
  precision-recall curve), averaged over the levels, then over the classes (Everingham et al., 2010, "The
  PASCAL Visual Object Classes (VOC) Challenge", sec. 4.2). The curve ends at (recall 0, precision 1), so
  the level-0 term is always 1, as in ``vision-evaluation``; classes without a positive are skipped;
- ``roc_auc`` (binary): area under the ROC curve of the positive class's probability (column 1).

Accuracy and mean-per-class come from :func:`raykd.eval.metrics.classification_metrics`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score

from raykd.eval.metrics import classification_metrics


def _as_numpy(array) -> np.ndarray:
    return array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)


def interpolated_average_precision(targets: np.ndarray, scores: np.ndarray, n_points: int = 11) -> float:
    """n-point interpolated AP of one class: binary ``targets [N]``, ``scores [N]``."""
    precision, recall, _ = precision_recall_curve(targets, scores)
    levels = np.linspace(0.0, 1.0, n_points)
    return float(np.mean([precision[recall >= t].max() for t in levels]))


def map_11_points(targets, probs) -> float:
    """Mean over classes (with at least one positive) of the 11-point interpolated AP.

    ``targets``: multi-hot ``[N, C]``; ``probs``: ``[N, C]``. Raises ValueError if no class has a positive.
    """
    targets, probs = _as_numpy(targets), _as_numpy(probs)
    if targets.shape != probs.shape or targets.ndim != 2:
        raise ValueError(f"11point_mAP needs multi-hot targets and scores of one shape [N, C], got "
                         f"{targets.shape} and {probs.shape}")
    classes = [c for c in range(targets.shape[1]) if targets[:, c].any()]
    if not classes:
        raise ValueError("11point_mAP: no class has a positive example")
    return float(np.mean([interpolated_average_precision(targets[:, c] > 0, probs[:, c]) for c in classes]))


def roc_auc(targets, probs) -> float:
    """ROC-AUC of ``probs[:, 1]`` for binary ``targets [N]`` in {0, 1}."""
    targets, probs = _as_numpy(targets), _as_numpy(probs)
    if probs.ndim != 2 or probs.shape[1] != 2:
        raise ValueError(f"roc_auc is for two classes, got scores of shape {probs.shape}")
    return float(roc_auc_score(targets, probs[:, 1]))


def accuracy(targets, probs) -> float:
    return float(classification_metrics(probs, targets)["top1"])


def mean_per_class(targets, probs) -> float:
    return float(classification_metrics(probs, targets)["mean_per_class_recall"])


METRIC_FNS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "mean-per-class": mean_per_class, "11point_mAP": map_11_points, "roc_auc": roc_auc,
}


def get_metric(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The metric function ``(targets, probs) -> float``. Raises ValueError for an unknown name."""
    if name not in METRIC_FNS:
        raise ValueError(f"unknown ELEVATER metric {name!r}; choose from {sorted(METRIC_FNS)}")
    return METRIC_FNS[name]


def score(name: str, targets, probs) -> dict[str, float]:
    """The data set's metric ``name`` plus, for multi-class sets, ``top1`` / ``top5`` (C >= 5) /
    ``mean_per_class_recall``; a non-finite probability gives NaN metrics instead of an exception."""
    targets, probs = _as_numpy(targets), _as_numpy(probs)
    if not np.isfinite(probs).all():
        return {name: float("nan")}
    out = {name: get_metric(name)(targets, probs)}
    if targets.ndim == 1:
        out |= {k: float(v) for k, v in classification_metrics(probs, targets).items()}
    return out
