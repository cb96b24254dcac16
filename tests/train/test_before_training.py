"""`eval.before_training`: the enabled tasks run at step 0 on the untrained weights and are logged like any other
evaluation (results.jsonl, TensorBoard)."""
from __future__ import annotations

import json

import pytest
import torch

from raykd.train import evaluation as ev
from raykd.train.loop import LoopContext, run_training, setup
from raykd.train.run_logger import RunLogger, read_tensorboard_scalars
from tests.train.local import LocalRun
from tests.train.test_evaluation import cfg_for


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tasks_run_at_step_0_on_the_initial_weights_and_are_logged(builtin_root, tmp_path, capsys):
    cfg = cfg_for(builtin_root, **{"eval.before_training": True, "eval.zeroshot.every_n_epochs": 1,
                                    "eval.knn.every_n_epochs": 2})
    run = LocalRun(cfg)
    run_training(cfg, run.context(evaluate=ev.epoch_evaluator(cfg)))
    first = run.reports[0]
    assert (first["step"], first["epoch"]) == (0, 0) and "train/loss" not in first
    assert {k.split("/")[0] for k in first if k.count("/") == 2} == {"zeroshot", "knn"}  # every enabled task is due
    assert "eval before training: knn, zeroshot" in capsys.readouterr().out
    # the numbers are the untrained model's: the same seed's freshly built model evaluates to them
    initial = setup(cfg, LoopContext(epoch_batches=lambda epoch: [], steps_per_epoch=1)).model
    expected = ev.epoch_evaluator(cfg)(initial, -1)
    assert {k: first[k] for k in expected} == pytest.approx(expected)
    steps = run.steps_per_epoch
    assert [r["step"] for r in run.reports if "zeroshot/digits/top1" in r] == [0, steps]  # and after the epoch

    logger = RunLogger(str(tmp_path))
    for report in run.reports:
        logger.log(report)
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, steps]
    assert lines[0]["metrics"]["zeroshot/digits/top1"] == first["zeroshot/digits/top1"]
    scalars = read_tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars["zeroshot/digits/top1"][0] == pytest.approx(first["zeroshot/digits/top1"])


def test_off_by_default_and_not_repeated_on_resume(builtin_root):
    cfg = cfg_for(builtin_root, **{"eval.zeroshot.every_n_epochs": 1, "train.max_steps": 1})
    assert cfg.eval.before_training is False
    run = LocalRun(cfg)
    run_training(cfg, run.context(evaluate=ev.epoch_evaluator(cfg)))
    assert run.reports[0]["step"] == 1
    cfg.eval.before_training, cfg.train.max_steps = True, 2
    resumed = LocalRun(cfg, resume_state=run.checkpoints[-1])  # step 1: not a fresh start
    run_training(cfg, resumed.context(evaluate=ev.epoch_evaluator(cfg)))
    assert all(r["step"] > 0 for r in resumed.reports)
