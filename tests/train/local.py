"""Run `run_training` without Ray: batches from webdataset + DataLoader, checkpoints in memory."""
from __future__ import annotations

import copy

from raykd.data.pipeline import iterate_shards_torch
from raykd.models.towers import build_tower
from raykd.models.checkpoint import load_state
from raykd.train.loop import LoopContext
from raykd.train.trainer import train_plan


class LocalRun:
    """A LoopContext whose reports and checkpoints are kept in lists, for tests."""

    def __init__(self, cfg, resume_state=None):
        urls, n = train_plan(cfg)
        self.cfg = cfg
        self.urls = urls
        self.spec = build_tower(cfg.model.image, "image").image_spec
        self.tokenizer = build_tower(cfg.model.text, "text").tokenizer
        self.reports: list[dict] = []
        self.checkpoints: list[dict] = []
        self.resume_state = resume_state
        self.steps_per_epoch = n // cfg.train.batch_size

    def epoch_batches(self, epoch):
        loader = iterate_shards_torch(self.urls, self.spec, self.tokenizer, self.cfg.train.batch_size,
                                      augment=self.cfg.data.augment, on_error=self.cfg.data.on_error)
        for batch in loader:
            if batch["image"].shape[0] == self.cfg.train.batch_size:  # drop_last
                yield batch

    def report(self, metrics, checkpoint_dir):
        self.reports.append(metrics)
        if checkpoint_dir:
            self.checkpoints.append(copy.deepcopy(load_state(checkpoint_dir)))

    def context(self, **kwargs) -> LoopContext:
        return LoopContext(epoch_batches=self.epoch_batches, steps_per_epoch=self.steps_per_epoch,
                           report=self.report, load_checkpoint=lambda: self.resume_state, **kwargs)


