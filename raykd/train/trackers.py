"""Experiment trackers beside TensorBoard: Weights & Biases and MLflow, through Ray's integrations.

`run.loggers: [tensorboard, wandb, mlflow]` (default `[tensorboard]`). A training run sends every report
(`train/loss`, `train/lr`, ..., and the evaluation metrics under the names `results.jsonl` uses, e.g.
`zeroshot/shapes/top1`) at its step, and the resolved config, from the Ray Train controller:
`TrackerLogger` opens the runs with `ray.air.integrations.wandb.setup_wandb` and
`ray.air.integrations.mlflow.setup_mlflow`. A sweep logs through Tune's logger callbacks instead
(`raykd.tune.trackers`: `WandbLoggerCallback`, `MLflowLoggerCallback`), one tracker run per trial.

Settings come from the trackers' own environment variables: `WANDB_PROJECT` (default `raykd`),
`WANDB_MODE=offline`, `WANDB_DIR`, `WANDB_API_KEY`; `MLFLOW_TRACKING_URI` (default: the `mlruns` folder in
the current directory, MLflow's file store, which MLflow 3 accepts with `MLFLOW_ALLOW_FILE_STORE=true`: set
for `file:` URIs) and `MLFLOW_EXPERIMENT_NAME` (default: the run's `run.name`).
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path

from ray.train import UserCallback

try:  # the end-of-run hook (closing the tracker runs) is a controller callback, not a UserCallback
    from ray.train.v2._internal.execution.callback import ControllerCallback
except ImportError:  # pragma: no cover - another Ray: the runs end when the controller exits
    ControllerCallback = None

# logger -> (module it needs, what to install)
LOGGERS = {"tensorboard": ("tensorboardX", "raykd"), "wandb": ("wandb", "raykd[wandb]"),
           "mlflow": ("mlflow", "raykd[mlflow]")}
TRACKERS = ("wandb", "mlflow")  # the loggers besides TensorBoard (which `RunLogger` writes)
POSITION_KEYS = ("step", "epoch")


def check_loggers(loggers: list) -> None:
    """Known names, each once, and their packages installed; raises ValueError naming `run.loggers`."""
    for name in loggers:
        if name not in LOGGERS:
            raise ValueError(f"run.loggers: unknown logger {name!r}; valid: {list(LOGGERS)}")
    if len(set(loggers)) != len(loggers):
        raise ValueError(f"run.loggers: each logger once, got {loggers}")
    for name in loggers:
        module, extra = LOGGERS[name]
        if not package_installed(module):
            raise ValueError(f"run.loggers: {name} needs the {module} package: pip install '{extra}'")


def package_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def trackers(loggers: list) -> list[str]:
    return [name for name in loggers if name in TRACKERS]


def scalars(metrics: dict) -> dict[str, float]:
    """The finite numbers of a report, under their report names (what TensorBoard gets too)."""
    return {k: float(v) for k, v in metrics.items() if k not in POSITION_KEYS and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


def mlflow_names(values: dict) -> dict:
    """MLflow refuses some characters in names (`retrieval/shapes/image_to_text_R@1`): they become `_`."""
    return {re.sub(r"[^A-Za-z0-9_\-. :/]", "_", k): v for k, v in values.items()}


def flat_config(config: dict, prefix: str = "") -> dict:
    """{'optim': {'lr': 1e-3}} -> {'optim.lr': 1e-3}: the dotted keys `--set` uses (MLflow params)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path.cwd() / "mlruns").resolve().as_uri()


def allow_file_store(uri: str) -> None:
    """MLflow 3 refuses its file store (`file:` URIs, the `mlruns` default here) unless told it is wanted."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def wandb_project() -> str:
    return os.environ.get("WANDB_PROJECT", "raykd")


def run_id(run_dir: str | Path) -> str:
    """A W&B run id from the run directory's name: the same run resumes the same W&B run."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", Path(run_dir).name)[:64]


class TrackerLogger(UserCallback):
    """Ray Train callback (in the controller, beside `RunLogger`) that sends rank 0's reports to W&B and MLflow."""

    def __init__(self, loggers: list[str], config: dict, run_dir: str | Path, name: str):
        self.loggers = trackers(loggers)
        self.config, self.run_dir, self.name = config, str(run_dir), name
        self.mlflow_uri = mlflow_tracking_uri()  # resolved in the driver: the controller's cwd may differ
        # the trackers' settings as the driver has them (the controller is a Ray actor, maybe on another node)
        self.env = {k: v for k, v in os.environ.items() if k.startswith(("WANDB_", "MLFLOW_"))}
        self._wandb = self._mlflow = None

    def __getstate__(self):
        return {**self.__dict__, "_wandb": None, "_mlflow": None}

    def _start(self, name: str) -> None:
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        if name == "wandb" and self._wandb is None:
            from ray.air.integrations.wandb import setup_wandb

            directory = Path(os.environ.get("WANDB_DIR", self.run_dir))
            directory.mkdir(parents=True, exist_ok=True)
            self._wandb = setup_wandb(
                config=self.config, rank_zero_only=False, project=wandb_project(), trial_id=run_id(self.run_dir),
                trial_name=self.name, dir=str(directory))
        if name == "mlflow" and self._mlflow is None:
            from ray.air.integrations.mlflow import setup_mlflow

            allow_file_store(self.mlflow_uri)
            self._mlflow = setup_mlflow(
                config=flat_config(self.config), tracking_uri=self.mlflow_uri, rank_zero_only=False,
                experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", self.name), run_name=Path(self.run_dir).name,
                create_experiment_if_not_exists=True)

    def log(self, metrics: dict) -> None:
        step = int(metrics.get("step", 0))
        values = scalars(metrics)
        for name in self.loggers:  # a tracker that fails is reported and dropped; training goes on
            try:
                self._start(name)
                if name == "wandb":
                    self._wandb.log(values, step=step)
                else:
                    self._mlflow.log_metrics(mlflow_names(values), step=step)
            except Exception as err:  # noqa: BLE001 - any tracker error (network, auth, names)
                print(f"[raykd] run.loggers: {name} failed and is switched off for this run: {err}", flush=True)
                self.loggers = [n for n in self.loggers if n != name]

    def finish(self, failed: bool = False) -> None:
        if self._wandb is not None:
            self._wandb.finish(exit_code=1 if failed else 0)
            self._wandb = None
        if self._mlflow is not None:
            self._mlflow.end_run(status="FAILED" if failed else "FINISHED")
            self._mlflow = None

    def after_report(self, run_context, metrics, checkpoint):
        if metrics:
            self.log(metrics[0])  # rank 0 carries evaluation results


if ControllerCallback is not None:
    class TrackerCloser(ControllerCallback):
        """Finishes a `TrackerLogger`'s runs when the training run ends (W&B flushes its run file then).

        Ray Train hands user callbacks only `after_report`/`after_exception`; this one is a controller
        callback that shares the logger object (both travel to the controller in one pickle)."""

        def __init__(self, logger: TrackerLogger):
            self.logger = logger

        def after_controller_finish(self, result):
            self.logger.finish(failed=getattr(result, "error", None) is not None)


def train_callbacks(loggers: list[str], config: dict, run_dir: str | Path, name: str) -> list:
    """The Ray Train callbacks for `run.loggers` besides TensorBoard (none when it is the only one)."""
    if not trackers(loggers):
        return []
    logger = TrackerLogger(loggers, config, run_dir, name)
    return [logger] + ([TrackerCloser(logger)] if ControllerCallback is not None else [])
