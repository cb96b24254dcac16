"""Driver-side logging and local Ray sizing, without starting Ray."""
from __future__ import annotations

import json

from raykd.config import load_config
from raykd.train.run_logger import RunLogger, evaluation_metrics, progress_line, read_tensorboard_scalars
from raykd.train.trainer import local_num_cpus
from tests.conftest import REPO


def test_run_logger_writes_tensorboard_results_and_progress(tmp_path, capsys):
    logger = RunLogger(str(tmp_path))
    logger.after_report(None, [{"train/loss": 2.5, "train/lr": 1e-3, "step": 10, "epoch": 0, "data/skipped": 3},
                               {"train/loss": 9.9, "step": 10, "epoch": 0}], None)
    logger.after_report(None, [{"step": 20, "epoch": 1, "zeroshot/shapes/top1": 0.75}], None)
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert lines == [{"step": 20, "epoch": 1, "metrics": {"zeroshot/shapes/top1": 0.75}}]
    scalars = read_tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [2.5]  # rank 0's value, not rank 1's
    assert scalars["data/skipped"] == [3.0] and scalars["zeroshot/shapes/top1"] == [0.75]
    out = capsys.readouterr().out
    assert "[raykd] step 10 | epoch 0 | loss 2.5 | lr 0.001" in out and "zeroshot/shapes/top1 0.7500" in out


def test_evaluation_metrics_filter_and_progress_line():
    metrics = {"train/loss": 1.0, "data/skipped": 0, "step": 3, "epoch": 0, "linear/digits/top1": 0.5}
    assert evaluation_metrics(metrics) == {"linear/digits/top1": 0.5}
    assert progress_line({"step": 1, "epoch": 0}) == "[raykd] step 1 | epoch 0"


def test_local_ray_leaves_cpus_for_ray_data():
    cfg = load_config(REPO / "recipes/quickstart.yaml")
    assert cfg.train.num_workers == 2
    assert local_num_cpus(cfg) >= 2 * cfg.train.cpus_per_worker + 2
    cfg.run.ray_num_cpus = 7
    assert local_num_cpus(cfg) == 7


def test_train_log_level_reaches_ray_trains_per_report_line():
    import logging

    from ray.train.v2._internal.execution import context as train_context

    from raykd.train.ray_context import quiet_report_log

    logger = logging.getLogger(train_context.__file__)  # the logger of "Reporting training result ..."
    quiet_report_log("WARNING")
    assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    quiet_report_log("INFO")
    assert logger.isEnabledFor(logging.INFO)
