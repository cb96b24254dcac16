"""ELEVATER's three evaluation modes on one loaded data set: each returns test-set probabilities ``[N, C]``.

- ``zeroshot``: CLIP zero-shot (Radford et al., 2021): the prompt-ensemble class embeddings of
  ``raykd.eval.tasks.zeroshot``; probabilities are ``softmax(100 * image @ classes)`` as the toolkit's
  ``clip_zeroshot_evaluator`` computes them.
- ``linear_probe``: a :class:`~raykd.eval.elevater.classifier.LinearHead` trained on the frozen image
  embeddings (the projected, unnormalised ``encode_image`` output, what the toolkit's CLIP models give).
- ``finetune``: the image tower, its projection head and the linear head trained end to end.

Both trained modes pick (lr, weight decay) by :func:`raykd.eval.elevater.search.search` on a validation split
of the training images (or take the given values with ``tune=False``), then train the final classifier on all
of them (the toolkit's ``MERGE_TRAIN_VAL_FINAL_RUN``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from raykd.eval.elevater.classifier import (FeatureInputs, FitConfig, ImageClassifier, ImageInputs, Inputs,
                                            LinearHead, SubsetInputs, fit_and_track, predict)
from raykd.eval.elevater.metrics import get_metric
from raykd.eval.elevater.reader import ElevaterData
from raykd.eval.elevater.sampling import sample_few_shot, split_train_val
from raykd.eval.elevater.search import SearchSpace, search
from raykd.eval.features import FeatureCache, extract_image_features, inference, model_device
from raykd.eval.tasks.zeroshot import zeroshot_classifier

ZEROSHOT_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class EvalOptions:
    """How the trained modes train and search (defaults: the toolkit's CLIP configs and command line).

    ``lr`` / ``weight_decay`` are used with ``tune=False``. Search fits train ``epochs``; the final fit
    ``epochs + final_extra_epochs`` (the toolkit's ``END_EPOCH`` 10 and ``EXTRA_FINAL_TRAIN_EPOCH`` 40).
    """
    tune: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.316
    epochs: int = 10
    final_extra_epochs: int = 40
    batch_size: int = 64
    feature_batch_size: int = 256
    val_fraction: float = 0.2
    space: SearchSpace = field(default_factory=SearchSpace)
    num_threads: int | None = None  # torch intra-op threads inside an actor (None: leave as is)


@dataclass
class ModeOutput:
    probs: np.ndarray
    trainable_params: int = 0
    n_train: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- zero-shot
def run_zeroshot(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray | None = None,
                 seed: int = 0, cache: FeatureCache | None = None) -> ModeOutput:
    feats = extract_image_features(model, data.test.images, opts.feature_batch_size, project=True, normalize=True,
                                   cache=cache, key=(data.spec.name, "test"))
    classes = zeroshot_classifier(model, data.classnames, data.spec.templates, opts.feature_batch_size)
    probs = F.softmax(ZEROSHOT_LOGIT_SCALE * feats @ classes, dim=-1)
    return ModeOutput(probs.numpy().astype(np.float32))


# ---------------------------------------------------------------------------------------------- trained modes
def choose_hparams(make: Callable[[], torch.nn.Module], inputs: Inputs, targets: np.ndarray,
                   labels: list[list[int]], data: ElevaterData, opts: EvalOptions, seed: int,
                   device: torch.device) -> dict[str, Any]:
    """``{"lr", "weight_decay", "searched", "trials", "val_score"}``: the search on a validation split of
    ``inputs``, or the given values when ``opts.tune`` is off or the split leaves under two training rows."""
    fixed = {"lr": opts.lr, "weight_decay": opts.weight_decay, "searched": False, "trials": 0}
    if not opts.tune:
        return fixed
    tr, va = split_train_val(labels, data.spec.num_classes, opts.val_fraction, seed)
    if len(tr) < 2 or len(va) == 0:
        return fixed | {"note": "too few images to carve a validation split; used the given lr / weight decay"}
    metric = get_metric(data.spec.metric)
    val = (SubsetInputs(inputs, va), targets[va], metric)
    cfg = FitConfig(epochs=opts.epochs, batch_size=opts.batch_size, seed=seed, multilabel=data.spec.multilabel)

    def evaluate(lr: float, wd: float) -> float:
        trial = replace(cfg, lr=lr, weight_decay=wd)
        return fit_and_track(make, SubsetInputs(inputs, tr), targets[tr], trial, device, val)[1]

    result = search(evaluate, opts.space)
    return {"lr": result.lr, "weight_decay": result.weight_decay, "searched": True, "trials": len(result.trials),
            "val_score": result.score}


def _train_and_predict(make: Callable[[], torch.nn.Module], inputs: Inputs, targets: np.ndarray,
                       labels: list[list[int]], test_inputs: Inputs, data: ElevaterData, opts: EvalOptions,
                       seed: int, device: torch.device, search_index: np.ndarray | None) -> ModeOutput:
    if search_index is None:
        hparams = choose_hparams(make, inputs, targets, labels, data, opts, seed, device)
    else:  # tune on a subset, train the final classifier on everything (patch-camelyon, full-shot)
        hparams = choose_hparams(make, SubsetInputs(inputs, search_index), targets[search_index],
                                 [labels[i] for i in search_index], data, opts, seed, device)
        hparams["search_images"] = int(len(search_index))
    cfg = FitConfig(hparams["lr"], hparams["weight_decay"], opts.epochs + opts.final_extra_epochs, opts.batch_size,
                    seed, data.spec.multilabel)
    module, _ = fit_and_track(make, inputs, targets, cfg, device)
    probs = predict(module, test_inputs, device, opts.feature_batch_size)
    if not np.isfinite(probs).all():
        raise FloatingPointError(f"the final classifier diverged (lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, "
                                 f"{cfg.epochs} epochs): non-finite test predictions")
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return ModeOutput(probs, trainable, len(inputs), hparams)


def _search_index(data: ElevaterData, pool_labels: list[list[int]], shots_full: bool, seed: int) -> np.ndarray | None:
    k = data.spec.search_shots
    if not shots_full or k is None or len(pool_labels) <= k * data.spec.num_classes:
        return None
    return sample_few_shot(pool_labels, data.spec.num_classes, k, seed)


def run_linear_probe(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray, seed: int = 0,
                     cache: FeatureCache | None = None) -> ModeOutput:
    torch.manual_seed(seed)
    device, bs, name = model_device(model), opts.feature_batch_size, data.spec.name
    full = len(train_index) == len(data.train)
    pool = data.train.subset(train_index)
    train_x = extract_image_features(model, pool.images, bs, project=True, normalize=False,
                                     cache=cache if full else None, key=(name, "train") if full else None)
    test_x = extract_image_features(model, data.test.images, bs, project=True, normalize=False,
                                    cache=cache, key=(name, "test"))
    dim = train_x.shape[1]

    def make() -> torch.nn.Module:
        return LinearHead(dim, data.spec.num_classes, bn_momentum=None)

    return _train_and_predict(make, FeatureInputs(train_x), pool.targets, pool.labels, FeatureInputs(test_x), data,
                              opts, seed, device, _search_index(data, pool.labels, full, seed))


def run_finetune(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray, seed: int = 0,
                 cache: FeatureCache | None = None) -> ModeOutput:
    torch.manual_seed(seed)
    device, spec = model_device(model), model.image_spec
    pool = data.train.subset(train_index)
    inputs = ImageInputs(pool.images, spec)
    with inference(model):  # eval mode: probing the width must not touch BatchNorm statistics
        dim = model.image_head(model.image(inputs.batch(np.arange(min(2, len(inputs))), device))).shape[1]

    def make() -> torch.nn.Module:
        return ImageClassifier(model, dim, data.spec.num_classes)

    full = len(train_index) == len(data.train)
    return _train_and_predict(make, inputs, pool.targets, pool.labels, ImageInputs(data.test.images, spec), data,
                              opts, seed, device, _search_index(data, pool.labels, full, seed))


MODES: dict[str, Callable[..., ModeOutput]] = {
    "zeroshot": run_zeroshot, "linear_probe": run_linear_probe, "finetune": run_finetune,
}
