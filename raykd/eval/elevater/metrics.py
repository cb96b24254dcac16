"""ELEVATER's four metrics on predicted probabilities ``[N, C]``, as its toolkit computes them
(Elevater_Toolkit_IC ``vision_benchmark/evaluation/metric.py`` over ``vision-evaluation`` 0.2.9, the version
its ``requirements.txt`` pins: microsoft/vision-evaluation ``vision_evaluation/evaluators.py``):

- ``accuracy``: top-1 accuracy of the arg-max (``TopKAccuracyEvaluator(1)``: ``np.argmax``, first of ties);
- ``mean-per-class``: ``BalancedAccuracyScoreEvaluator``: the columns of classes without a test label are
  dropped first (``MemorizingEverythingEvaluator.calculate_score``), then scikit-learn's balanced accuracy of
  the arg-max over the remaining columns;
- ``11point_mAP`` (multi-label, ``targets`` multi-hot ``[N, C]``): ``MeanAveragePrecisionNPointsEvaluator``:
  per class, walk the recall levels ``linspace(1, 0, 11)`` from 1 down to 0 along scikit-learn's
  precision-recall curve (recall decreasing), keeping the running maximum of the precision of every point
  whose recall is >= the level; average those 11 values, then the classes with a positive. (Levels from
  ``linspace(0, 1, 11)`` would sit a hair above 0.3, 0.6 and 0.7 and miss points exactly at those recalls.)
  The curve ends at (recall 0, precision 1), so the level-0 term is always 1;
- ``roc_auc`` (binary): area under the ROC curve of the positive class's probability (column 1).

vision-evaluation itself is not a dependency (it pulls opencv, pycocotools and pycocoevalcap); its formulas
are reproduced here and the tests hold them to hand-computed cases. ``score`` adds ``top1`` / ``top5`` /
``mean_per_class_recall`` from :func:`raykd.eval.metrics.classification_metrics` for multi-class sets.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import balanced_accuracy_score, precision_recall_curve, roc_auc_score

from raykd.eval.metrics import classification_metrics


def _as_numpy(array) -> np.ndarray:
    return array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)


def interpolated_average_precision(targets: np.ndarray, scores: np.ndarray, n_points: int = 11) -> float:
    """n-point interpolated AP of one class: binary ``targets [N]``, ``scores [N]`` (vision-evaluation's
    ``MeanAveragePrecisionNPointsEvaluator._per_class_calc``, line for line)."""
    precision, recall, _ = precision_recall_curve(targets, scores)  # recall decreasing, ends at (0, 1)
    total, at, running = 0.0, 0, 0.0
    for level in np.linspace(1, 0, n_points, endpoint=True).tolist():
        while at < len(recall) and level <= recall[at]:
            running = max(running, precision[at])
            at += 1
        total += running
    return float(total / n_points)


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
    targets, probs = _as_numpy(targets), _as_numpy(probs)
    return float(np.mean(np.argmax(probs, axis=1) == targets)) if len(targets) else 0.0


def mean_per_class(targets, probs) -> float:
    """Balanced accuracy over the classes present in ``targets``, the arg-max taken over their columns only."""
    targets, probs = _as_numpy(targets).astype(np.int64), _as_numpy(probs)
    present = np.unique(targets)
    preds = present[np.argmax(probs[:, present], axis=1)]
    return float(balanced_accuracy_score(targets, preds))


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
