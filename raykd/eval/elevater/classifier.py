"""The classifier ELEVATER trains for linear probing and fine-tuning, and its training loop.

As the toolkit's ``Classifier`` (``vision_benchmark/evaluation/full_model_finetune.py``): image features go
through a parameter-free ``BatchNorm1d`` (``USE_CHANNEL_BN``) and one ``Linear`` layer; the loss is cross
entropy (binary cross entropy on multi-hot targets for multi-label sets); predictions are the softmax of
the logits (for multi-label sets too, as the toolkit submits them). Linear probing trains the head on
cached features; fine-tuning trains a copy of the image tower (+ its projection head) with it, end to end.
The optimiser is SGD with momentum; its learning rate is constant (``schedule="constant"``: the toolkit's
default empty ``TRAIN.SCHEDULE``, ``adjust_learning_rate`` in ``full_model_finetune.py``) or has a linear
warmup and a cosine decay over ``epochs`` (``"cosine"``, protocol ``clean``: :func:`raykd.schedules.lr_factor`);
a batch of one is skipped (BatchNorm).

``init_weight`` ``[C, D]`` (the toolkit's ``INIT_HEAD_WITH_TEXT_ENCODER``) starts the linear layer at the
text encoder's class embeddings with a zero bias, as the toolkit's ``Classifier`` does.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raykd.eval.features import preprocess_uint8
from raykd.models.copying import independent_copy
from raykd.schedules import lr_factor


SCHEDULES = ("constant", "cosine")


@dataclass
class FitConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    multilabel: bool = False
    momentum: float = 0.9
    warmup_epochs: int = 5
    schedule: str = "cosine"  # "constant" | "cosine"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; choose from {SCHEDULES}")


class LinearHead(nn.Module):
    """``BatchNorm1d(D, affine=False)`` then ``Linear(D, C)``: ``[B, D] -> [B, C]`` logits.

    ``bn_momentum=None`` keeps a cumulative average of the batch statistics (exact for fixed features,
    which is what linear probing trains on); fine-tuning uses BatchNorm's default 0.1.
    """

    def __init__(self, dim: int, num_classes: int, bn_momentum: float | None = 0.1,
                 init_weight: torch.Tensor | None = None):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, momentum=bn_momentum)
        self.linear = nn.Linear(dim, num_classes)
        if init_weight is not None:
            if tuple(init_weight.shape) != (num_classes, dim):
                raise ValueError(f"head initialisation of shape {tuple(init_weight.shape)}, the head is "
                                 f"{(num_classes, dim)}")
            with torch.no_grad():
                self.linear.weight.copy_(init_weight)
                self.linear.bias.zero_()

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(feats))


class ImageClassifier(nn.Module):
    """A trainable copy of ``model``'s image tower and projection head, then a :class:`LinearHead`.

    The copy has every parameter trainable, whatever the tower's lock in the dual encoder.
    """

    def __init__(self, model: Any, dim: int, num_classes: int, init_weight: torch.Tensor | None = None):
        super().__init__()
        self.tower = independent_copy(model.image).requires_grad_(True)  # a compiled tower's copy would call the original
        self.proj = independent_copy(model.image_head).requires_grad_(True)
        self.head = LinearHead(dim, num_classes, init_weight=init_weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(self.tower(images)))


# ---------------------------------------------------------------------------------------------- inputs
class Inputs:
    """Rows to train on, fetched by index as a float batch on ``device``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, index: np.ndarray, device: torch.device) -> torch.Tensor:
        raise NotImplementedError


class FeatureInputs(Inputs):
    def __init__(self, feats: torch.Tensor):
        self.feats = torch.as_tensor(feats, dtype=torch.float32)

    def __len__(self) -> int:
        return self.feats.shape[0]

    def batch(self, index: np.ndarray, device: torch.device) -> torch.Tensor:
        return self.feats[torch.as_tensor(index)].to(device)


class SubsetInputs(Inputs):
    """Rows ``indices`` of another :class:`Inputs`."""

    def __init__(self, inputs: Inputs, indices: np.ndarray):
        self.inputs, self.indices = inputs, np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, index: np.ndarray, device: torch.device) -> torch.Tensor:
        return self.inputs.batch(self.indices[np.asarray(index, dtype=np.int64)], device)


class ImageInputs(Inputs):
    """Images (anything indexable by a list of ints into uint8 arrays, e.g. ``ZipImages``) preprocessed with
    ``transform`` (uint8 arrays -> ``[B, 3, S, S]``; default the model's eval transform); kept in memory once
    preprocessed when they fit in ``cache_bytes``."""

    def __init__(self, images: Any, spec: Any, cache_bytes: int = 1 << 30,
                 transform: Callable[[list[np.ndarray]], torch.Tensor] | None = None):
        self.images, self.spec = images, spec
        self.transform = transform or functools.partial(preprocess_uint8, spec=spec)
        self._cache: torch.Tensor | None = None
        if len(images) * 3 * spec.size * spec.size * 4 <= cache_bytes:
            self._cache = torch.cat([self.transform(images[list(range(s, min(s + 256, len(images))))])
                                     for s in range(0, len(images), 256)]) if len(images) else None

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, index: np.ndarray, device: torch.device) -> torch.Tensor:
        if self._cache is not None:
            return self._cache[torch.as_tensor(index)].to(device)
        return self.transform(self.images[[int(i) for i in index]]).to(device)


# ---------------------------------------------------------------------------------------------- train, predict
def _loss(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets.long())


def train(module: nn.Module, inputs: Inputs, targets: np.ndarray, cfg: FitConfig, device: torch.device,
          on_epoch: Callable[[int], None] | None = None) -> nn.Module:
    """Train ``module`` in place on ``inputs`` / ``targets`` (int ``[N]`` or multi-hot ``[N, C]``) for
    ``cfg.epochs`` shuffled epochs; ``on_epoch(epoch)`` runs after each. Returns ``module``."""
    module.to(device).train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    per_epoch = -(-len(inputs) // cfg.batch_size)
    sched = None if cfg.schedule == "constant" else torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(
        lr_factor, warmup_steps=min(cfg.warmup_epochs, cfg.epochs // 2) * per_epoch,
        total_steps=max(1, cfg.epochs * per_epoch)))
    gen = torch.Generator().manual_seed(cfg.seed)
    y = torch.as_tensor(targets)
    with torch.enable_grad():
        for epoch in range(cfg.epochs):
            module.train()
            for index in torch.randperm(len(inputs), generator=gen).split(cfg.batch_size):
                if index.numel() < 2:  # BatchNorm needs two rows
                    continue
                loss = _loss(module(inputs.batch(index.numpy(), device)), y[index].to(device), cfg.multilabel)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
            if on_epoch is not None:
                on_epoch(epoch)
    return module


@torch.no_grad()
def predict(module: nn.Module, inputs: Inputs, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities ``[N, C]`` (float32) in eval mode."""
    was_training = module.training
    module.eval()
    out = [F.softmax(module(inputs.batch(np.arange(s, min(s + batch_size, len(inputs))), device)).float(), dim=-1)
           .cpu() for s in range(0, len(inputs), batch_size)]
    module.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@dataclass
class Fit:
    """A trained module; with validation, its best score, the epoch (0-based) that first reached it and,
    when kept, that epoch's validation probabilities."""
    module: nn.Module
    score: float = float("nan")
    epoch: int | None = None
    probs: np.ndarray | None = None
    scores: list[float] | None = None


def fit_and_track(make: Callable[[], nn.Module], train_inputs: Inputs, train_targets: np.ndarray, cfg: FitConfig,
                  device: torch.device, val: tuple[Inputs, np.ndarray, Callable] | None = None,
                  keep_probs: bool = False) -> Fit:
    """Train a fresh ``make()``; with ``val = (inputs, targets, score_fn(targets, probs) -> float)`` the
    validation score is computed after every epoch and the best one returned (the toolkit's ``best_acc1``
    in ``train_task``, ``full_model_finetune.py``), with the first epoch that reached it and, with
    ``keep_probs``, that epoch's probabilities (the toolkit's ``best_logits``). A fit that diverges
    (non-finite validation probabilities at any epoch) scores 0, keeping its best finite epoch. Without
    ``val`` the score is NaN."""
    scores: list[float] = []
    best: dict[str, Any] = {}

    def on_epoch(epoch: int) -> None:
        if val is None:
            return
        probs = predict(module, val[0], device)
        value = val[2](val[1], probs) if np.isfinite(probs).all() else float("nan")
        if np.isfinite(value) and (not best or value > best["score"]):
            best.update(score=value, epoch=epoch, probs=probs if keep_probs else None)
        scores.append(value)

    module = make()
    train(module, train_inputs, train_targets, cfg, device, on_epoch)
    if not scores:
        return Fit(module)
    if not np.isfinite(scores).all():  # diverged: scores 0; the best finite epoch's predictions are kept
        return Fit(module, 0.0, best.get("epoch"), best.get("probs"), scores)
    return Fit(module, best["score"], best["epoch"], best["probs"], scores)
