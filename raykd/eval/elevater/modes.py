"""ELEVATER's three evaluation modes on one loaded data set: each returns test-set probabilities ``[N, C]``.

- ``zeroshot``: CLIP zero-shot (Radford et al., 2021): per class, the mean of its L2-normalised prompt
  embeddings, renormalised (the toolkit's ``extract_text_features``); probabilities are
  ``softmax(100 * image @ classes)`` as the toolkit's ``clip_zeroshot_evaluator`` computes them.
- ``linear_probe``: a :class:`~raykd.eval.elevater.classifier.LinearHead` trained on the frozen image
  embeddings (the projected, unnormalised ``encode_image`` output, what the toolkit's CLIP models give).
- ``finetune``: the image tower, its projection head and the linear head trained end to end.

Both trained modes pick (lr, weight decay) by :func:`raykd.eval.elevater.search.search` on a validation split
of the training images (or take the given values with ``tune=False``), then train the final classifier on all
of them (the toolkit's ``MERGE_TRAIN_VAL_FINAL_RUN``; not for 1-shot under ``toolkit``).

Two protocols (``EvalOptions.protocol``):

- ``toolkit`` (default) matches Elevater_Toolkit_IC (``vision_benchmark/evaluation/full_model_finetune.py``,
  ``feature.py``, ``commands/linear_probe.py``, ``run.sh``): bicubic torchvision preprocessing with the data
  set's centre crop; a constant learning rate (empty ``TRAIN.SCHEDULE``) in the search and the final fit;
  the search starts as the toolkit's (``search.py``); the validation split is the first 20% of each class in
  manifest order; the final fit scores the test set after every epoch and reports (and submits) the best
  epoch; 1 shot is sampled as 2 and trained on the one not held out, without merging train and val; the
  linear head starts at the text encoder's class embeddings (``INIT_HEAD_WITH_TEXT_ENCODER``, ``run.sh``'s
  default; ``text_head=False`` turns it off); the linear probe's BatchNorm keeps running statistics with
  momentum 0.1, as the toolkit's ``BatchNorm1d``.
- ``clean``: raykd's choices: bilinear batched preprocessing; 5 warm-up epochs and a cosine decay; a random
  validation split; the last epoch of the final fit is reported (no test-set selection); 1 shot as asked;
  a randomly initialised head unless ``text_head=True``; the linear probe's BatchNorm uses the exact
  statistics of the (fixed) features.
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
from raykd.eval.elevater.knowledge import Knowledge, class_prompts
from raykd.eval.elevater.preprocess import ImageTransform
from raykd.eval.elevater.reader import ElevaterData
from raykd.eval.elevater.sampling import sample_few_shot, split_train_val
from raykd.eval.elevater.search import SearchSpace, search
from raykd.eval.features import FeatureCache, extract_image_features, extract_text_features, inference, model_device
from raykd.eval.tasks.zeroshot import zeroshot_classifier

ZEROSHOT_LOGIT_SCALE = 100.0
PROTOCOLS = ("toolkit", "clean")


@dataclass(frozen=True)
class EvalOptions:
    """How the trained modes train and search (defaults: the toolkit's CLIP configs and command line).

    ``lr`` / ``weight_decay`` are used with ``tune=False``. Search fits train ``epochs``; the final fit
    ``epochs + final_extra_epochs`` (the toolkit's ``END_EPOCH`` 10 and ``EXTRA_FINAL_TRAIN_EPOCH`` 40).
    ``protocol``: ``toolkit`` | ``clean`` (module docstring); ``text_head``: None = the protocol's default;
    ``knowledge``: the knowledge-augmented prompts (:mod:`raykd.eval.elevater.knowledge`; default none).
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
    protocol: str = "toolkit"
    text_head: bool | None = None
    knowledge: Knowledge = field(default_factory=Knowledge)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown ELEVATER protocol {self.protocol!r}; choose from {PROTOCOLS}")

    @property
    def toolkit(self) -> bool:
        return self.protocol == "toolkit"

    @property
    def use_text_head(self) -> bool:
        return self.toolkit if self.text_head is None else self.text_head

    @property
    def schedule(self) -> str:
        return "constant" if self.toolkit else "cosine"

    @property
    def split(self) -> str:
        return "first" if self.toolkit else "random"


@dataclass
class ModeOutput:
    probs: np.ndarray
    trainable_params: int = 0
    n_train: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)
    head_dim: int = 0  # the width of the trained head's input (0: no trained head)


def image_transform(model: Any, data: ElevaterData, opts: EvalOptions) -> ImageTransform | None:
    """The preprocessing of ``data``'s images under ``opts.protocol``; None: the model's own eval transform
    (``clean`` with a centre crop, which is what it does)."""
    if not opts.toolkit and data.spec.center_crop:
        return None
    return ImageTransform(model.image_spec, data.spec.center_crop, "bicubic" if opts.toolkit else "bilinear")


def _feature_key(data: ElevaterData, split: str, transform: ImageTransform | None) -> tuple[str, str]:
    return data.spec.name, split if transform is None else f"{split}/{transform.tag}"


def class_weights(model: Any, data: ElevaterData, opts: EvalOptions) -> torch.Tensor:
    """Zero-shot class embeddings ``[D, C]`` of ``data``'s class names and templates, with its knowledge
    texts when it has them: per class the mean of its L2-normalised prompt embeddings, renormalised."""
    if not data.knowledge:
        return zeroshot_classifier(model, data.classnames, data.spec.templates, opts.feature_batch_size)
    prompts = class_prompts(data.classnames, data.spec.templates, data.knowledge)
    feats = extract_text_features(model, [p for texts in prompts for p in texts], opts.feature_batch_size,
                                  project=True, normalize=True)
    per_class = torch.split(feats, [len(texts) for texts in prompts])
    return F.normalize(torch.stack([f.mean(dim=0) for f in per_class]), dim=-1).T.contiguous()


# ---------------------------------------------------------------------------------------------- zero-shot
def run_zeroshot(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray | None = None,
                 seed: int = 0, cache: FeatureCache | None = None, merge_final: bool = True) -> ModeOutput:
    transform = image_transform(model, data, opts)
    feats = extract_image_features(model, data.test.images, opts.feature_batch_size, project=True, normalize=True,
                                   cache=cache, key=_feature_key(data, "test", transform), transform=transform)
    classes = class_weights(model, data, opts)
    probs = F.softmax(ZEROSHOT_LOGIT_SCALE * feats @ classes, dim=-1)
    return ModeOutput(probs.numpy().astype(np.float32))


# ---------------------------------------------------------------------------------------------- trained modes
def choose_hparams(make: Callable[[], torch.nn.Module], inputs: Inputs, targets: np.ndarray, tr: np.ndarray,
                   va: np.ndarray, data: ElevaterData, opts: EvalOptions, seed: int,
                   device: torch.device) -> dict[str, Any]:
    """``{"lr", "weight_decay", "searched", "trials", "val_score"}``: the search training on rows ``tr`` of
    ``inputs`` and scoring rows ``va``, or the given values when ``opts.tune`` is off or the split leaves
    under two training rows."""
    fixed = {"lr": opts.lr, "weight_decay": opts.weight_decay, "searched": False, "trials": 0}
    if not opts.tune:
        return fixed
    if len(tr) < 2 or len(va) == 0:
        return fixed | {"note": "too few images to carve a validation split; used the given lr / weight decay"}
    metric = get_metric(data.spec.metric)
    val = (SubsetInputs(inputs, va), targets[va], metric)
    cfg = FitConfig(epochs=opts.epochs, batch_size=opts.batch_size, seed=seed, multilabel=data.spec.multilabel,
                    schedule=opts.schedule)

    def evaluate(lr: float, wd: float) -> float:
        trial = replace(cfg, lr=lr, weight_decay=wd)
        return fit_and_track(make, SubsetInputs(inputs, tr), targets[tr], trial, device, val).score

    result = search(evaluate, opts.space, start="toolkit" if opts.toolkit else "first")
    return {"lr": result.lr, "weight_decay": result.weight_decay, "searched": True, "trials": len(result.trials),
            "val_score": result.score}


def _train_and_predict(make: Callable[[], torch.nn.Module], inputs: Inputs, targets: np.ndarray,
                       labels: list[list[int]], test_inputs: Inputs, data: ElevaterData, opts: EvalOptions,
                       seed: int, device: torch.device, search_index: np.ndarray | None,
                       merge_final: bool = True) -> ModeOutput:
    n = data.spec.num_classes
    if search_index is None:
        tr, va = split_train_val(labels, n, opts.val_fraction, seed, opts.split)
        hparams = choose_hparams(make, inputs, targets, tr, va, data, opts, seed, device)
    else:  # tune on a subset, train the final classifier on everything (patch-camelyon, full-shot)
        tr, va = split_train_val([labels[i] for i in search_index], n, opts.val_fraction, seed, opts.split)
        hparams = choose_hparams(make, SubsetInputs(inputs, search_index), targets[search_index], tr, va, data,
                                 opts, seed, device)
        hparams["search_images"] = int(len(search_index))
    final = np.arange(len(inputs)) if merge_final or search_index is not None else tr
    cfg = FitConfig(hparams["lr"], hparams["weight_decay"], opts.epochs + opts.final_extra_epochs, opts.batch_size,
                    seed, data.spec.multilabel, schedule=opts.schedule)
    train_inputs = inputs if len(final) == len(inputs) else SubsetInputs(inputs, final)
    if opts.toolkit:  # the toolkit scores the test set after every epoch and keeps the best one
        fit = fit_and_track(make, train_inputs, targets[final], cfg, device,
                            (test_inputs, data.test.targets, get_metric(data.spec.metric)), keep_probs=True)
        probs = fit.probs if fit.probs is not None else np.full((len(test_inputs), n), np.nan, np.float32)
        hparams |= {"reported_epoch": fit.epoch, "epochs": cfg.epochs}
    else:
        fit = fit_and_track(make, train_inputs, targets[final], cfg, device)
        probs = predict(fit.module, test_inputs, device, opts.feature_batch_size)
        hparams |= {"reported_epoch": cfg.epochs - 1, "epochs": cfg.epochs}
    if not np.isfinite(probs).all():
        raise FloatingPointError(f"the final classifier diverged (lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, "
                                 f"{cfg.epochs} epochs): non-finite test predictions")
    trainable = sum(p.numel() for p in fit.module.parameters() if p.requires_grad)
    return ModeOutput(probs, trainable, len(final), hparams)


def _search_index(data: ElevaterData, pool_labels: list[list[int]], shots_full: bool, seed: int,
                  opts: EvalOptions) -> np.ndarray | None:
    k = data.spec.search_shots
    if not shots_full or k is None or len(pool_labels) <= k * data.spec.num_classes:
        return None
    return sample_few_shot(pool_labels, data.spec.num_classes, k, seed, sort=not opts.toolkit)


def _head_init(model: Any, data: ElevaterData, opts: EvalOptions) -> torch.Tensor | None:
    """``[C, D]``: the text encoder's class embeddings when the head starts from them, else None."""
    return class_weights(model, data, opts).T.contiguous() if opts.use_text_head else None


def run_linear_probe(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray, seed: int = 0,
                     cache: FeatureCache | None = None, merge_final: bool = True) -> ModeOutput:
    torch.manual_seed(seed)
    device, bs = model_device(model), opts.feature_batch_size
    full = len(train_index) == len(data.train)
    transform = image_transform(model, data, opts)
    pool = data.train.subset(train_index)
    train_x = extract_image_features(model, pool.images, bs, project=True, normalize=False,
                                     cache=cache if full else None,
                                     key=_feature_key(data, "train", transform) if full else None, transform=transform)
    test_x = extract_image_features(model, data.test.images, bs, project=True, normalize=False,
                                    cache=cache, key=_feature_key(data, "test", transform), transform=transform)
    dim, init = train_x.shape[1], _head_init(model, data, opts)
    momentum = 0.1 if opts.toolkit else None  # the toolkit's BatchNorm1d default; clean: exact feature statistics

    def make() -> torch.nn.Module:
        return LinearHead(dim, data.spec.num_classes, bn_momentum=momentum, init_weight=init)

    out = _train_and_predict(make, FeatureInputs(train_x), pool.targets, pool.labels, FeatureInputs(test_x), data,
                             opts, seed, device, _search_index(data, pool.labels, full, seed, opts), merge_final)
    out.hparams["text_head"], out.head_dim = init is not None, dim
    return out


def run_finetune(model: Any, data: ElevaterData, opts: EvalOptions, *, train_index: np.ndarray, seed: int = 0,
                 cache: FeatureCache | None = None, merge_final: bool = True) -> ModeOutput:
    torch.manual_seed(seed)
    device, spec = model_device(model), model.image_spec
    transform = image_transform(model, data, opts)
    pool = data.train.subset(train_index)
    inputs = ImageInputs(pool.images, spec, transform=transform)
    with inference(model):  # eval mode: probing the width must not touch BatchNorm statistics
        dim = model.image_head(model.image(inputs.batch(np.arange(min(2, len(inputs))), device))).shape[1]
    init = _head_init(model, data, opts)

    def make() -> torch.nn.Module:
        return ImageClassifier(model, dim, data.spec.num_classes, init_weight=init)

    full = len(train_index) == len(data.train)
    out = _train_and_predict(make, inputs, pool.targets, pool.labels,
                             ImageInputs(data.test.images, spec, transform=transform), data, opts, seed, device,
                             _search_index(data, pool.labels, full, seed, opts), merge_final)
    out.hparams["text_head"], out.head_dim = init is not None, dim
    return out


MODES: dict[str, Callable[..., ModeOutput]] = {
    "zeroshot": run_zeroshot, "linear_probe": run_linear_probe, "finetune": run_finetune,
}
