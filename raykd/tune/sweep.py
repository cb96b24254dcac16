"""`raykd tune SWEEP.yaml`: run (or resume) a sweep with Ray Tune and report its trials.

setup (validate, size) -> Tuner (new or restored) -> fit -> clean up -> table, CSV, best trial.
The experiment lives at `<storage_path>/<name>`; `trials.csv` and `best.json` are written there.
A sweep whose driver died is continued with `resume=True` (`raykd tune SWEEP.yaml --resume`):
finished trials keep their results, unfinished ones are re-launched and Ray Train restores each
from its latest checkpoint.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from raykd.config.loading import ConfigError, build_config
from raykd.data.run_state import DataRunState
from raykd.tune.trackers import tune_callbacks
from raykd.train.trainer import init_ray, train_plan
from raykd.tune import results as res
from raykd.tune.resources import concurrency, run_samples, trial_resources
from raykd.tune.spec import Sweep, grid_size, load_sweep, param_space
from raykd.tune.trainable import SAMPLES, TrialPlan, run_trial


@dataclass
class SweepOutcome:
    experiment_path: str
    rows: list[dict]
    best: dict | None  # best.json's content, or None when no trial reported the metric
    table: str


def train_command(recipe: Path, overrides: list[str]) -> str:
    """The `raykd train` command line that trains a config of the sweep."""
    return " ".join(["raykd train", shlex.quote(str(recipe))] + [f"--set {shlex.quote(o)}" for o in overrides])


def trial_dirname(trial) -> str:
    """Trial directories are named by trial id (short, and stable across a resume)."""
    return trial.trial_id


def experiment_path(sweep: Sweep) -> str:
    storage = sweep.spec.storage_path or "runs/sweeps"
    if "://" not in storage:
        storage = str(Path(storage).resolve())
    return f"{storage.rstrip('/')}/{sweep.name}"


def asha_budget(sweep: Sweep, n_samples: int) -> tuple[int, int]:
    """(grace period, max_t) in samples: the sweep's values, or one epoch / the whole base run."""
    epoch, whole = run_samples(build_config(sweep.base), n_samples)
    grace = sweep.spec.scheduler.grace_period or epoch
    max_t = sweep.spec.scheduler.max_t or whole
    if grace > max_t:
        raise ConfigError(f"scheduler.grace_period ({grace} samples) exceeds scheduler.max_t ({max_t} samples)")
    return grace, max_t


def build_scheduler(sweep: Sweep, n_samples: int):
    if sweep.spec.scheduler.name == "none":
        return None
    grace, max_t = asha_budget(sweep, n_samples)
    return ASHAScheduler(time_attr=SAMPLES, max_t=max_t, grace_period=grace,
                         reduction_factor=sweep.spec.scheduler.reduction_factor)


def should_restore(exp_path: str, resume: bool) -> bool:
    """Whether to restore the experiment at `exp_path`; an existing one is never started over.

    Raises ConfigError when it exists and `resume` is not set."""
    if not tune.Tuner.can_restore(exp_path):
        return False
    if not resume:
        raise ConfigError(f"a sweep already exists at {exp_path}: pass --resume to continue it, "
                          "or --name / --storage-path for a new one")
    return True


def build_tuner(sweep: Sweep, exp_path: str, n_samples: int, max_concurrent: int, restore: bool):
    """A new Tuner for the sweep, or (`restore`) the experiment at `exp_path` restored. Needs Ray up."""
    spec = sweep.spec
    plan = TrialPlan(experiment_path=exp_path, metric=spec.metric, cwd=os.getcwd())
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=sweep.base, plan=plan),
        {"CPU": spec.resources.driver_cpus, **spec.resources.driver_resources})
    if restore:
        print(f"[raykd] resuming sweep {exp_path}", flush=True)
        return tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    storage, name = exp_path.rsplit("/", 1)
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples,
            scheduler=build_scheduler(sweep, n_samples), trial_dirname_creator=trial_dirname,
            # the generator enforces the limit itself (Tune ignores max_concurrent_trials beside a given one)
            search_alg=BasicVariantGenerator(random_state=spec.seed, max_concurrent=max_concurrent)),
        run_config=tune.RunConfig(
            name=name, storage_path=storage,
            callbacks=tune_callbacks(build_config(sweep.base).run.loggers, name),  # W&B / MLflow: a run per trial
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            # Trials on S3/GCS write their logs to a local working directory that Tune uploads.
            sync_config=tune.SyncConfig(sync_artifacts="://" in exp_path)),
    )


def run_sweep(path: str | Path, overrides: list[str] | None = None, *, resume: bool = False,
              name: str = "", storage_path: str = "") -> SweepOutcome:
    """Run the sweep at `path` (or resume it); `overrides` are --set strings for its base recipe."""
    sweep = load_sweep(path, overrides)
    sweep.spec.name = name or sweep.spec.name
    sweep.spec.storage_path = storage_path or sweep.spec.storage_path
    base = build_config(sweep.base)
    _, n_samples = train_plan(base)  # generates built-in data once, before trials race for it
    exp_path = experiment_path(sweep)
    restore = should_restore(exp_path, resume)
    build_scheduler(sweep, n_samples)  # its settings fail here, before Ray starts
    init_ray(base)  # a local Ray comes with its dashboard: the placement-group cleaner of a stopped trial needs it
    need = trial_resources(base, sweep.spec.resources)
    n_concurrent, why = concurrency(need, ray.cluster_resources(), sweep.spec.max_concurrent_trials, grid_size(sweep))
    print(f"[raykd] sweep {sweep.name}: {grid_size(sweep)} trial(s), {why}", flush=True)
    tuner = build_tuner(sweep, exp_path, n_samples, n_concurrent, restore)
    results = tuner.fit()
    rows = res.rows_from_results(results, sweep.keys, sweep.spec.metric)
    for row in rows:  # trials stopped early were killed before they could drop their own
        DataRunState.for_run(base.run.name, row["trial_id"]).close()  # a trial's run dir is its id
    return report(sweep, exp_path, rows)


def report(sweep: Sweep, exp_path: str, rows: list[dict]) -> SweepOutcome:
    """Print the trials table and the best trial; write trials.csv and best.json to the experiment."""
    spec = sweep.spec
    table = res.to_table(rows)
    res.write_text(f"{exp_path}/trials.csv", res.to_csv(rows))
    best = res.best_row(rows, spec.metric, spec.mode)
    summary = res.best_summary(best, sweep.keys, spec.metric, spec.mode, sweep.fixed) if best else None
    lines = [f"[raykd] sweep {sweep.name}: {exp_path}", table, f"  trials: {exp_path}/trials.csv"]
    if summary:
        res.write_text(f"{exp_path}/best.json", res.dump_json(summary))
        lines += [f"  best: trial {summary['trial_id']} {spec.metric} {summary['value']:.4f} ({summary['status']})",
                  f"  train it: {train_command(sweep.recipe, summary['overrides'])}",
                  f"  checkpoint: {summary['checkpoint']}"]
    else:
        lines.append(f"  best: none (no trial reported {spec.metric})")
    print("\n".join(lines), flush=True)
    return SweepOutcome(experiment_path=exp_path, rows=rows, best=summary, table=table)
