"""Linear probe on frozen backbone features (``project=False``), as in Radford et al., 2021 (CLIP, sec. 3.2):
a logistic-regression classifier whose regularisation strength is chosen on a validation split carved
from the training set, then refit on the whole training set.

Two solvers: ``"sklearn"`` (``LogisticRegression``, L-BFGS, grid over ``C``) and ``"torch"`` (a linear layer
trained with AdamW on the cached features, grid over weight decay; runs on the given device).
Features are standardised with training-set statistics first.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from raykd.eval.features import FeatureCache, extract_image_features, model_device
from raykd.eval.metrics import classification_metrics, prefixed
from raykd.eval.tasks._registry import register_task

TASK = "linear_probe"
DEFAULT_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_WD_GRID = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)

# A fit function: (train_x [N, D], train_y [N], eval_x [M, D], num_classes, reg) -> scores [M, C].
FitFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int, float], np.ndarray]


def fit_sklearn(train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray, num_classes: int, reg: float,
                max_iter: int = 1000) -> np.ndarray:
    """Multinomial logistic regression with inverse regularisation ``C = reg`` -> scores ``[M, C]``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=reg, max_iter=max_iter).fit(train_x, train_y)
    scores = np.full((eval_x.shape[0], num_classes), -np.inf)
    scores[:, clf.classes_] = clf.decision_function(eval_x).reshape(eval_x.shape[0], -1)
    if len(clf.classes_) == 2:  # binary decision_function is one column: the score of classes_[1]
        scores[:, clf.classes_[0]] = 0.0
    return scores


def fit_torch(train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray, num_classes: int, reg: float,
              *, steps: int = 500, lr: float = 0.05, train_batch_size: int = 1024, seed: int = 0,
              device: str | torch.device = "cpu") -> np.ndarray:
    """A zero-initialised linear layer trained for ``steps`` AdamW steps (weight decay ``reg``, cosine
    schedule, shuffled minibatches of ``train_batch_size``; full batch when the set is smaller) -> scores ``[M, C]``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(train_x, dtype=torch.float32, device=device)
    y = torch.as_tensor(train_y, dtype=torch.int64, device=device)
    layer = torch.nn.Linear(x.shape[1], num_classes).to(device)
    torch.nn.init.zeros_(layer.weight)  # convex problem: a deterministic start, independent of the global RNG
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=reg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    batches = iter(())
    with torch.enable_grad():
        for _ in range(steps):
            idx = next(batches, None)
            if idx is None:  # a new epoch
                batches = iter(torch.randperm(x.shape[0], generator=gen).to(device).split(train_batch_size))
                idx = next(batches)
            loss = F.cross_entropy(layer(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return layer(torch.as_tensor(eval_x, dtype=torch.float32, device=device)).cpu().numpy()


def _standardise(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    return [(a - mean) / std for a in (train_x, *others)]


def select_regularisation(train_x: np.ndarray, train_y: np.ndarray, fit: FitFn, grid: Sequence[float],
                          num_classes: int, val_fraction: float = 0.2, seed: int = 0) -> float:
    """The grid value with the best validation top-1 (first one on ties); the validation split is a
    ``val_fraction`` carve-out of the training set, stratified when every class has >= 2 samples."""
    counts = np.bincount(train_y)
    stratify = train_y if counts[counts > 0].min() >= 2 else None
    tr_x, val_x, tr_y, val_y = train_test_split(train_x, train_y, test_size=val_fraction, random_state=seed,
                                                stratify=stratify)
    tr_x, val_x = _standardise(tr_x, val_x)
    accs = [float((fit(tr_x, tr_y, val_x, num_classes, reg).argmax(1) == val_y).mean()) for reg in grid]
    return float(grid[int(np.argmax(accs))])


def linear_probe_features(train_x: torch.Tensor | np.ndarray, train_y: Any, test_x: torch.Tensor | np.ndarray,
                          test_y: Any, num_classes: int | None = None, *, solver: str = "sklearn",
                          grid: Sequence[float] | None = None, val_fraction: float = 0.2, seed: int = 0,
                          **solver_kwargs: Any) -> dict[str, float]:
    """Probe on features ``[N, D]`` / ``[M, D]`` with labels ``[N]`` / ``[M]`` -> bare metrics ``top1``,
    ``top5`` (C >= 5), ``mean_per_class_recall``, and ``best_C`` (sklearn) or ``best_weight_decay`` (torch).

    Raises ValueError for an unknown solver.
    """
    solvers = {"sklearn": (fit_sklearn, DEFAULT_C_GRID, "best_C"), "torch": (fit_torch, DEFAULT_WD_GRID,
                                                                              "best_weight_decay")}
    if solver not in solvers:
        raise ValueError(f"unknown linear-probe solver {solver!r}; choose from {sorted(solvers)}")
    base_fit, default_grid, reg_name = solvers[solver]

    def fit(*args):
        return base_fit(*args, **solver_kwargs)

    train_x, test_x = (torch.as_tensor(a).float().cpu().numpy() for a in (train_x, test_x))
    train_y, test_y = (np.asarray(torch.as_tensor(a).cpu().numpy(), dtype=np.int64) for a in (train_y, test_y))
    num_classes = num_classes or int(max(train_y.max(), test_y.max())) + 1
    reg = select_regularisation(train_x, train_y, fit, grid or default_grid, num_classes, val_fraction, seed)
    std_train, std_test = _standardise(train_x, test_x)
    scores = fit(std_train, train_y, std_test, num_classes, reg)
    return {**classification_metrics(scores, test_y, num_classes), reg_name: reg}


@register_task(TASK, data_kind="classification", modality="image", aliases=("linear",))
def linear_probe(model: Any, train_images: Any, train_labels: Any, images: Any, labels: Any,
                 classnames: Sequence[str], dataset_name: str, solver: str = "sklearn",
                 grid: Sequence[float] | None = None, val_fraction: float = 0.2, seed: int = 0,
                 batch_size: int = 256, cache: FeatureCache | None = None, **solver_kwargs: Any) -> dict[str, float]:
    """Linear probe of the frozen image backbone: fit on ``train_images``, report on ``images``.

    Returns ``linear_probe/<dataset>/{top1, top5 (C >= 5), mean_per_class_recall, best_C | best_weight_decay}``.
    ``batch_size`` is the feature-extraction batch; ``solver_kwargs`` go to the fit function (e.g. ``steps``,
    ``lr``, ``train_batch_size`` for torch, ``max_iter`` for sklearn). The torch solver trains on the model's
    device unless ``device`` is given.
    """
    if solver == "torch":
        solver_kwargs.setdefault("device", model_device(model))
    train_x = extract_image_features(model, train_images, batch_size, project=False, normalize=False,
                                     cache=cache, key=(dataset_name, "train"))
    test_x = extract_image_features(model, images, batch_size, project=False, normalize=False,
                                    cache=cache, key=(dataset_name, "test"))
    metrics = linear_probe_features(train_x, train_labels, test_x, labels, len(classnames), solver=solver,
                                    grid=grid, val_fraction=val_fraction, seed=seed, **solver_kwargs)
    return prefixed(TASK, dataset_name, metrics)
