"""The Tune function trainable: one trial = one Ray Train `TorchTrainer` run, its reports sent to Tune.

This is the pattern current Ray wants (Train V2): Tune runs a plain function per trial, the function
builds and fits a TorchTrainer, and a Train callback (`ReportToTune`, Ray's `TuneReportCallback`)
forwards the run's reports to the trial. The deprecated `Tuner(trainer)` is not used.

Where a trial writes (`<experiment>` = `<storage_path>/<sweep name>`, trial directories are named
by trial id):

    <experiment>/<trial_id>/config.yaml, results.jsonl, tensorboard/   (local storage; on S3/GCS the
                                                                      trial's working dir, synced)
    <experiment>/<trial_id>/checkpoints/<run.name>/checkpoint_*        Ray Train checkpoints

A trial re-launched after its driver died (Tune's `max_failures`, or a resumed sweep) builds a
TorchTrainer with the same name and storage path, and Ray Train restores its latest checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from raykd.config.loading import save_config
from raykd.data.run_state import DataRunState
from raykd.train.trackers import TRACKERS
from raykd.train.trainer import build_trainer, train_plan
from raykd.tune.resources import run_samples
from raykd.tune.spec import build_trial_config

SAMPLES = "samples"  # ASHA's clock: training samples seen (step x global batch)
SAMPLES_TOTAL = "samples_total"  # the trial's full run, to tell a stopped trial from a finished one
CHECKPOINT_PATH = "checkpoint_path"  # the trial's latest Ray Train checkpoint


class TuneResults:
    """Which of a Train run's reports become Tune results, and what they carry besides the run's
    metrics: `samples` (ASHA's clock), `samples_total` and `checkpoint_path` (the latest checkpoint,
    which may precede the report).

    Reports without the metric (training steps when the metric is an evaluation, or an epoch-end
    report when it is a training metric) are dropped: a scheduler would judge the trial on a stale
    value, and Tune's strict check wants the metric in every result. The run's end is special: its
    last step's report is held back and the final report (the one with the last checkpoint) goes to
    Tune, with the latest value of the metric. So a scheduler that stops the trial at the end of its
    budget (ASHA at max_t) stops it after that checkpoint, and the last result says how far it trained."""

    def __init__(self, metric: str, global_batch: int, samples_total: int):
        self.metric, self.global_batch, self.samples_total = metric, global_batch, samples_total
        self.last_checkpoint: str | None = None
        self.last_value = None

    def result(self, metrics: dict, checkpoint_path: str | None = None) -> dict | None:
        """The Tune result for one Train report (rank 0's metrics), or None to skip it."""
        self.last_checkpoint = checkpoint_path or self.last_checkpoint
        samples = int(metrics.get("step", 0)) * self.global_batch
        at_end = samples >= self.samples_total
        if self.metric in metrics:
            self.last_value = metrics[self.metric]
        if at_end and checkpoint_path is None:
            return None  # the run's final report, with its checkpoint, follows
        if self.metric not in metrics and not (at_end and self.last_value is not None):
            return None
        out = {**metrics, self.metric: self.last_value, SAMPLES: samples, SAMPLES_TOTAL: self.samples_total}
        if self.last_checkpoint:
            out[CHECKPOINT_PATH] = self.last_checkpoint
        return out


class ReportToTune(TuneReportCallback):
    """Ray Train callback (it runs in the run's controller) that sends `TuneResults` to the Tune trial."""

    def __init__(self, results: TuneResults):
        super().__init__()  # raises outside a Tune trial
        self.results = results

    def after_report(self, run_context, metrics, checkpoint):
        result = self.results.result(metrics[0] if metrics else {}, checkpoint.path if checkpoint else None)
        if result is not None:
            super().after_report(run_context, [result], None)  # the path is already in `result`


@dataclass
class TrialPlan:
    """What every trial of a sweep shares besides the base recipe."""

    experiment_path: str  # <storage_path>/<sweep name>: a local directory or a URI
    metric: str
    cwd: str = ""  # the driver's working directory: relative paths in the recipe mean the same here

    @property
    def local(self) -> bool:
        return "://" not in self.experiment_path


def run_trial(params: dict, *, base: dict, plan: TrialPlan) -> None:
    """Tune function trainable: train the base recipe with this trial's `params` under Ray Train."""
    trial_id = ray.tune.get_context().get_trial_id()
    working_dir = Path.cwd()  # Tune moved this process into the trial's working directory
    if plan.cwd and Path(plan.cwd).is_dir():
        os.chdir(plan.cwd)
    cfg = build_trial_config(base, params)
    cfg.run.loggers = [name for name in cfg.run.loggers if name not in TRACKERS]  # Tune's callbacks log trials
    trial_path = f"{plan.experiment_path}/{trial_id}"
    run_dir = Path(trial_path) if plan.local else working_dir  # remote: synced to trial_path by Tune
    cfg.run.run_dir, cfg.run.storage_path = str(run_dir), f"{trial_path}/checkpoints"
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    _, n_samples = train_plan(cfg)
    _, samples_total = run_samples(cfg, n_samples)
    report = ReportToTune(TuneResults(plan.metric, cfg.train.global_batch, samples_total))
    try:
        build_trainer(cfg, run_dir, callbacks=[report]).fit()
    finally:
        DataRunState.for_run(cfg.run.name, run_dir).close()
