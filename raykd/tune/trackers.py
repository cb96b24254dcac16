"""A sweep's W&B and MLflow logging: Ray Tune's logger callbacks, one tracker run per trial, grouped by the
experiment (see `raykd.train.trackers` for `run.loggers` and the trackers' settings). The trials' own Ray
Train runs then log to TensorBoard only, so nothing is logged twice."""
from __future__ import annotations

import os

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.utils import flatten_dict

from raykd.train.trackers import allow_file_store, mlflow_names, mlflow_tracking_uri, wandb_project


class MLflowNamesCallback(MLflowLoggerCallback):
    """`MLflowLoggerCallback`, its results flattened and named as MLflow accepts (`R@1` -> `R_1`)."""

    def log_trial_result(self, iteration, trial, result):
        super().log_trial_result(iteration, trial, mlflow_names(flatten_dict(result)))


def tune_callbacks(loggers: list[str], experiment: str) -> list:
    """Tune's logger callbacks for the trackers in `loggers` (none for TensorBoard alone)."""
    out = []
    if "wandb" in loggers:
        out.append(WandbLoggerCallback(project=wandb_project(), group=experiment, upload_checkpoints=False))
    if "mlflow" in loggers:
        uri = mlflow_tracking_uri()
        allow_file_store(uri)
        out.append(MLflowNamesCallback(tracking_uri=uri,
                                       experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", experiment)))
    return out
