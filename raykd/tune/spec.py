"""Sweep files: a base recipe, a search space over any config key, the metric and the scheduler.

    # recipes/sweeps/losses.yaml
    recipe: ../quickstart.yaml           # the base recipe, relative to this file
    set: {train.epochs: 3}               # fixed overrides of the recipe (like --set), optional
    metric: zeroshot/shapes/top1         # a key the training loop reports
    mode: max
    search_space:                        # dotted config key -> exactly one of:
      loss.name: {grid: [InfoNCE, SigLIP]}          #   every value, in every combination
      optim.lr: {loguniform: [1.0e-4, 1.0e-2]}      #   log-uniform between two bounds
      optim.weight_decay: {uniform: [0.0, 0.2]}     #   uniform between two bounds
      model.image.head.n_layers: {choice: [0, 1, 2]}  # one value drawn at random
    num_samples: 1                       # draws of the random keys (each grid point gets this many)
    max_concurrent_trials: 0             # cap; 0: as many as the cluster's resources allow
    scheduler: {name: asha, grace_period: 0, reduction_factor: 2, max_t: 0}
    storage_path: runs/sweeps            # or s3://bucket/path, gs://bucket/path

Each trial's values become `--set`-style overrides (`key=value`, values parsed as YAML) applied
after the recipe, `set:` and the command line's `--set`, so errors name the config key. Everything
here runs before Ray starts.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from raykd.config.loading import ConfigError, apply_overrides, build_config, load_recipe_dict, read_yaml
from raykd.config.recipes import resolve_recipe
from raykd.config.schema import Config
from raykd.train.check import check, validate

KINDS = ("grid", "choice", "uniform", "loguniform")
SWEEP_MARKER = "search_space"  # a YAML with this top-level key is a sweep, not a recipe


@dataclass
class SchedulerConfig:
    """Asynchronous successive halving (ASHA, Li et al. 2018) on samples seen."""

    name: Literal["asha", "none"] = "asha"
    grace_period: int = 0  # samples a trial trains before it may be stopped; 0: one epoch of the base recipe
    reduction_factor: float = 2.0  # keep the best 1/reduction_factor at each rung
    max_t: int = 0  # samples of the longest trial; 0: the base recipe's full run


@dataclass
class TrialResources:
    """What one trial takes besides its Ray Train workers (`train.num_workers` x `train.cpus_per_worker`)."""

    driver_cpus: float = 0.05  # the Tune trial function: it only launches and watches the TorchTrainer
    # Custom resources for the trial function, e.g. {head: 0.01} to keep drivers off preemptible nodes.
    driver_resources: dict = field(default_factory=dict)
    data_cpus: float = 0.0  # CPUs left free per trial for Ray Data's tasks; 0: data.cpus_per_read_task


@dataclass
class SweepConfig:
    """A sweep file (see the module docstring); checked like a recipe: unknown keys and wrong types fail."""

    recipe: str = ""  # base recipe, relative to the sweep file
    set: dict = field(default_factory=dict)  # fixed overrides of the base recipe: {dotted key: value}
    name: str = ""  # experiment name; '' -> the sweep file's name without .yaml
    metric: str = ""
    mode: Literal["max", "min"] = "max"
    search_space: dict = field(default_factory=dict)
    num_samples: int = 1
    max_concurrent_trials: int = 0
    seed: int = 0  # random draws of choice/uniform/loguniform keys
    max_failures: int = 0  # Tune re-launches of a trial whose driver died (e.g. its node was preempted)
    storage_path: str = "runs/sweeps"  # experiment at <storage_path>/<name>; any URI Ray accepts
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources: TrialResources = field(default_factory=TrialResources)


@dataclass
class Sweep:
    """A loaded sweep: its settings, the base recipe (as a dict) and where it came from."""

    path: Path
    spec: SweepConfig
    base: dict  # recipe + `set:` + command-line overrides, before any trial's values
    recipe: Path  # the base recipe file
    fixed: list[str] = field(default_factory=list)  # `set:` + command-line overrides, as --set strings

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def keys(self) -> list[str]:
        return list(self.spec.search_space)


def is_sweep_file(path: str | Path) -> bool:
    """True for a YAML mapping with a top-level `search_space` (recipes never have one); `path` may be a
    packaged name (`sweeps/losses`)."""
    try:
        data = read_yaml(resolve_recipe(path))
    except ConfigError:
        return False
    return SWEEP_MARKER in data


def to_yaml_value(value) -> str:
    """A value as `--set` text (YAML flow, via JSON); numpy scalars become plain Python numbers."""
    return json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))


def trial_overrides(params: dict) -> list[str]:
    """{'optim.lr': 1e-3, 'loss.name': 'SigLIP'} -> ['optim.lr=0.001', 'loss.name="SigLIP"']."""
    return [f"{key}={to_yaml_value(value)}" for key, value in params.items()]


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> Sweep:
    """Read and validate a sweep file; `overrides` are `--set` strings for the base recipe.

    Raises ConfigError naming the offending sweep option or config key."""
    path = resolve_recipe(path).resolve()
    data = read_yaml(path)
    if SWEEP_MARKER not in data:
        raise ConfigError(f"{path}: not a sweep file (no `{SWEEP_MARKER}:`); use `raykd train` for recipes")
    try:
        spec = build_config(data, SweepConfig)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if not spec.recipe:
        raise ConfigError(f"{path}: `recipe:` must name the base recipe")
    recipe = Path(spec.recipe) if Path(spec.recipe).is_absolute() else path.parent / spec.recipe
    fixed = [f"{k}={to_yaml_value(v)}" for k, v in spec.set.items()] + list(overrides or [])
    base = apply_overrides(load_recipe_dict(recipe), fixed)
    sweep = Sweep(path=path, spec=spec, base=base, recipe=recipe.resolve(), fixed=fixed)
    validate_sweep(sweep)
    return sweep


def parse_domain(key: str, entry) -> tuple[str, list]:
    """One search-space entry -> (kind, args): ('grid', [values]) or ('uniform', [low, high])."""
    where = f"search_space.{key}"
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in KINDS:
        raise ConfigError(f"{where}: expected a mapping with one of {list(KINDS)}, e.g. {{grid: [a, b]}}; "
                          f"got {entry!r}")
    kind, args = next(iter(entry.items()))
    if kind in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}.{kind}: expected a non-empty list of values, got {args!r}")
        return kind, args
    numeric = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numeric or not args[0] < args[1]:
        raise ConfigError(f"{where}.{kind}: expected [low, high] numbers with low < high, got {args!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise ConfigError(f"{where}.loguniform: bounds must be positive, got {args!r}")
    return kind, [float(a) for a in args]


def build_trial_config(base: dict, params: dict) -> Config:
    """The validated Config of one trial: the base recipe with the trial's values applied."""
    return build_config(apply_overrides(base, trial_overrides(params)))


def validate_sweep(sweep: Sweep) -> Config:
    """The base config, after checking the sweep: search-space keys and values, metric, budget.

    Each key is tried with each of its listed values (or both bounds) on top of the base recipe,
    so an unknown key, a wrong type or an unknown loss/builder fails here, naming the key."""
    spec = sweep.spec
    if not spec.search_space:
        raise ConfigError(f"{sweep.path}: `search_space` is empty")
    base = build_config(sweep.base)
    validate(base)
    for key, entry in spec.search_space.items():
        _, args = parse_domain(key, entry)
        for value in args:  # every listed value, or both bounds
            try:
                validate(build_trial_config(sweep.base, {key: value}))
            except ValueError as err:  # ConfigError is a ValueError
                raise ConfigError(f"search_space.{key} = {value!r}: {err}") from None
    _check_metric(spec, base)
    if spec.num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {spec.num_samples}")
    if spec.scheduler.reduction_factor <= 1:
        raise ConfigError(f"scheduler.reduction_factor must be > 1, got {spec.scheduler.reduction_factor}")
    if spec.scheduler.grace_period < 0 or spec.scheduler.max_t < 0:
        raise ConfigError("scheduler.grace_period and scheduler.max_t must be >= 0 (0: derived from the recipe)")
    return base


TRAIN_METRICS = ("train/loss", "train/lr", "train/logit_scale", "train/samples_per_s", "train/data_wait_frac")


def _check_metric(spec: SweepConfig, base: Config) -> None:
    """The metric must be one the run reports: a training metric, or an evaluation task it runs."""
    from raykd.eval.tasks import list_tasks  # the task registry imports torch: loaded on use

    metric = spec.metric
    if not metric:
        raise ConfigError("metric: name the metric to optimise, e.g. zeroshot/shapes/top1")
    task = metric.split("/")[0]
    if task in list_tasks():
        every = base.eval.task(task).every_n_epochs if base.eval.during_training else 0
        if not every:
            raise ConfigError(f"metric '{metric}' is never reported: the base recipe does not run {task} during "
                              f"training (set eval.{task}.every_n_epochs, and eval.during_training: true)")
    elif task == "train" and metric not in TRAIN_METRICS:
        close = difflib.get_close_matches(metric, TRAIN_METRICS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"metric '{metric}' is not a training metric{hint} (valid: {list(TRAIN_METRICS)})")


def param_space(sweep: Sweep) -> dict:
    """The Tune search space: {dotted key: tune domain}."""
    from ray import tune

    make = {"grid": tune.grid_search, "choice": tune.choice,
            "uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a)}
    return {key: make[kind](args) for key, (kind, args) in
            ((k, parse_domain(k, e)) for k, e in sweep.spec.search_space.items())}


def grid_size(sweep: Sweep) -> int:
    """Number of trials: the product of the grid lengths times num_samples."""
    n = sweep.spec.num_samples
    for key, entry in sweep.spec.search_space.items():
        kind, args = parse_domain(key, entry)
        if kind == "grid":
            n *= len(args)
    return n


def check_sweep(path: str | Path, overrides: list[str] | None = None) -> str:
    """`raykd check SWEEP.yaml`: validate the sweep, build the base model and the model of every
    value of each `model.*` key with random weights; returns the report to print."""
    sweep = load_sweep(path, overrides)
    counts = check(build_config(sweep.base))
    for key, entry in sweep.spec.search_space.items():
        if key.startswith("model."):
            for value in parse_domain(key, entry)[1]:
                check(build_trial_config(sweep.base, {key: value}))
    spec = sweep.spec
    lines = [f"{path}: OK (sweep '{sweep.name}' of {sweep.recipe.name}: {grid_size(sweep)} trial(s) over "
             f"{', '.join(sweep.keys)}; {spec.mode} {spec.metric}; scheduler {spec.scheduler.name})"]
    lines += [f"  {tower} (base recipe): {c['trainable']:,} trainable / {c['total']:,} parameters"
              for tower, c in counts.items()]
    return "\n".join(lines)
