"""An ELEVATER work item (data set x mode x shots x seed) and :func:`run_item`, which evaluates one with a model.

A :class:`WorkItem` is an item of the evaluation engine (:mod:`raykd.eval.engine`: ``unit``, ``run``,
``failed``), so its serial path and its Ray actor pool run it. ``run_item`` never raises for a data set's
problem: the error comes back in :attr:`ItemResult.error` so the other items keep their results.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from raykd.eval.elevater._registry import ElevaterDataset, get_dataset
from raykd.eval.elevater.catalogue import ELEVATER_20
from raykd.eval.elevater.knowledge import read_knowledge
from raykd.eval.elevater.metrics import score
from raykd.eval.elevater.modes import MODES, EvalOptions
from raykd.eval.elevater.reader import load_dataset
from raykd.eval.elevater.sampling import sample_few_shot
from raykd.eval.features import FeatureCache

FULL = -1  # ``shots`` of a full-shot item (ELEVATER's NUM_SAMPLES_PER_CLASS = -1); zero-shot items have 0


def setting_name(mode: str, shots: int) -> str:
    """``zeroshot``, ``linear_probe_5shot``, ``finetune_fullshot``: one leaderboard setting."""
    if mode == "zeroshot":
        return "zeroshot"
    return f"{mode}_{'full' if shots == FULL else shots}shot"


@dataclass(frozen=True)
class WorkItem:
    """One evaluation: ``spec`` under ``data_root`` in ``mode`` with ``shots`` per class and ``seed``."""
    spec: ElevaterDataset
    mode: str
    shots: int
    seed: int
    data_root: str
    options: EvalOptions = field(default_factory=EvalOptions)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown ELEVATER mode {self.mode!r}; choose from {sorted(MODES)}")
        if (self.mode == "zeroshot") != (self.shots == 0) or (self.shots < 0 and self.shots != FULL):
            raise ValueError(f"{self.mode}: bad shots {self.shots} (0 for zero-shot, k >= 1 or {FULL} = full)")

    @property
    def setting(self) -> str:
        return setting_name(self.mode, self.shots)

    @property
    def unit(self) -> str:
        """Items of one data set share an actor call and its image features."""
        return self.spec.name

    def run(self, model: Any, cache: FeatureCache) -> ItemResult:
        return run_item(model, self, cache)

    def failed(self, error: str, seconds: float = 0.0, cpu_seconds: float = 0.0) -> ItemResult:
        """The result of this item when it could not run (``error``: ``"ExcType: message"``)."""
        return ItemResult(self.spec.name, self.mode, self.shots, self.seed, self.spec.metric, error=error,
                          seconds=seconds, cpu_seconds=cpu_seconds, protocol=self.options.protocol)


@dataclass
class ItemResult:
    """What one work item produced. ``probs`` (float32 ``[N, C]``) is None when the item failed."""
    dataset: str
    mode: str
    shots: int
    seed: int
    metric: str
    value: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_test: int = 0
    num_classes: int = 0
    classnames_source: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the process over the item (all its threads)
    probs: np.ndarray | None = None
    error: str | None = None
    protocol: str = ""

    @property
    def setting(self) -> str:
        return setting_name(self.mode, self.shots)

    @property
    def ok(self) -> bool:
        return self.error is None


def average_head_classes() -> float:
    """The mean number of classes of the 20 ELEVATER sets (the submission readme's ``average(#cls_ds1, ...)``)."""
    return float(np.mean([get_dataset(name).num_classes for name in ELEVATER_20]))


def parameter_counts(model: Any, head_dim: int = 0) -> dict[str, int]:
    """ELEVATER's model statistics (Elevater_Toolkit_IC ``submission_file_readme.md``): ``num_backbone_params``
    all parameters of the pre-trained model, ``num_visual_params`` its image tower with its head, and
    ``num_params`` = ``num_backbone_params`` + ``head_dim`` x the average class count of the 20 sets (the
    "average head"; ``head_dim`` 0 for zero-shot, whose head is the text encoder, as in the readme's example)."""
    total = sum(p.numel() for p in model.parameters())
    visual = sum(p.numel() for name in ("image", "image_head") if hasattr(model, name)
                 for p in getattr(model, name).parameters())
    return {"num_params": total + int(round(head_dim * average_head_classes())), "num_visual_params": visual,
            "num_backbone_params": total}


def training_images(labels: list[list[int]], num_classes: int, shots: int, seed: int,
                    toolkit: bool) -> tuple[np.ndarray, bool]:
    """(indices of the training images, whether the final fit merges train and validation).

    Full shot: all images, in manifest order. k-shot: the few-shot sample; under the toolkit protocol in the
    order it was drawn (its manifest order, which the first-20% validation split follows), and 1 shot is
    drawn as 2 and trained without merging (``commands/linear_probe.py`` and ``finetune.py`` in
    Elevater_Toolkit_IC: ``NUM_SAMPLES_PER_CLASS = 2``, ``MERGE_TRAIN_VAL_FINAL_RUN = False``).
    """
    if shots == FULL:
        return np.arange(len(labels)), True
    if toolkit and shots == 1:
        return sample_few_shot(labels, num_classes, 2, seed, sort=False), False
    return sample_few_shot(labels, num_classes, shots, seed, sort=not toolkit), True


def run_item(model: Any, item: WorkItem, cache: FeatureCache | None = None) -> ItemResult:
    """Load the item's data set, sample its training images, run its mode, score the test predictions.

    ``cache`` shares image features between items of one process (test features across seeds and modes).
    Errors are returned as ``ItemResult.error = "ExcType: message"``.
    """
    start, cpu = time.perf_counter(), time.process_time()
    if item.options.num_threads:
        torch.set_num_threads(item.options.num_threads)
    try:
        splits = ("test",) if item.mode == "zeroshot" else ("train", "test")
        data = load_dataset(item.data_root, item.spec, splits)
        if item.options.knowledge.used:
            data.knowledge = read_knowledge(item.data_root, item.spec.name, item.options.knowledge)
        train_index, merge_final, opts = None, True, item.options
        if item.mode != "zeroshot":
            train_index, merge_final = training_images(data.train.labels, item.spec.num_classes, item.shots,
                                                       item.seed, opts.toolkit)
        out = MODES[item.mode](model, data, opts, train_index=train_index, seed=item.seed, cache=cache,
                               merge_final=merge_final)
        if not merge_final:
            out.hparams["note"] = "1 shot sampled as 2 per class; trained on the image not held out (toolkit)"
        if data.knowledge is not None:
            covered = sum(name in data.knowledge for name in data.classnames)
            out.hparams["knowledge"] = {"source": opts.knowledge.source, "gpt3": opts.knowledge.gpt3,
                                        "classes_with_knowledge": covered}
        metrics = score(item.spec.metric, data.test.targets, out.probs)
    except Exception as exc:  # noqa: BLE001 - reported per item; the other items keep their results
        return item.failed(f"{type(exc).__name__}: {exc}", time.perf_counter() - start, time.process_time() - cpu)
    return ItemResult(item.spec.name, item.mode, item.shots, item.seed, item.spec.metric,
                      value=metrics[item.spec.metric], metrics=metrics, n_train=out.n_train, n_test=len(data.test),
                      num_classes=item.spec.num_classes, classnames_source=data.classnames_source,
                      hparams=out.hparams,
                      params=parameter_counts(model, out.head_dim) | {"num_trainable_params": out.trainable_params},
                      seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu, probs=out.probs,
                      protocol=opts.protocol)
