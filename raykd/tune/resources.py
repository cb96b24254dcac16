"""What one trial needs, how many fit at once, and how long a run is in samples (ASHA's clock).

A trial is a Tune function (the driver of one Ray Train run) plus that run's workers plus room
for its Ray Data tasks. Ray Train starts a run only when all its workers fit, so trials beyond
what the cluster holds would just wait (and log); concurrency is capped at what fits.
"""
from __future__ import annotations

import math

from raykd.config.schema import Config
from raykd.tune.spec import TrialResources


def trial_resources(cfg: Config, extra: TrialResources) -> dict[str, float]:
    """Logical resources of one trial: {'CPU': ..., 'GPU': ...} (GPU only when the workers use one)."""
    t = cfg.train
    data_cpus = extra.data_cpus or cfg.data.cpus_per_read_task
    need = {"CPU": t.num_workers * t.cpus_per_worker + data_cpus + extra.driver_cpus}
    if t.use_gpu:
        need["GPU"] = float(t.num_workers)
    return need


def fitting_trials(need: dict[str, float], available: dict[str, float]) -> int:
    """How many trials of `need` fit in `available` at once (0 when not even one does)."""
    fits = [math.floor(available.get(name, 0.0) / amount + 1e-9) for name, amount in need.items() if amount > 0]
    return max(0, min(fits)) if fits else 0


def concurrency(need: dict[str, float], available: dict[str, float], cap: int, n_trials: int) -> tuple[int, str]:
    """(max concurrent trials, why). `cap` > 0 is the sweep's own limit.

    When no trial fits the cluster now (an autoscaling cluster with no workers yet), the sweep's
    cap is trusted (the autoscaler adds nodes for the pending placement groups), else 1."""
    fit = fitting_trials(need, available)
    shown = ", ".join(f"{k} {v:g}" for k, v in need.items())
    if fit == 0:
        n = cap or 1
        return n, (f"{n} concurrent trial(s): a trial needs {shown}, more than the cluster has now "
                   f"({_shown(available, need)}); waiting for the autoscaler")
    n = min(fit, cap) if cap else fit
    n = max(1, min(n, n_trials)) if n_trials else n
    return n, f"{n} concurrent trial(s): each needs {shown}; the cluster has {_shown(available, need)}"


def _shown(available: dict, need: dict) -> str:
    return ", ".join(f"{k} {available.get(k, 0):g}" for k in need)


def run_samples(cfg: Config, n_samples: int) -> tuple[int, int]:
    """(samples in one epoch, samples in the whole run) as the loop trains them: whole global batches."""
    global_batch = cfg.train.global_batch
    steps_per_epoch = n_samples // global_batch
    total_steps = steps_per_epoch * cfg.train.epochs
    if cfg.train.max_steps:
        total_steps = min(total_steps, cfg.train.max_steps)
    return steps_per_epoch * global_batch, total_steps * global_batch
