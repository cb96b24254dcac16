"""Setting a sweep up without running it: where it goes, ASHA's budget, a new or restored Tuner."""
from __future__ import annotations

import pytest

from raykd.config.loading import ConfigError
from raykd.tune.spec import load_sweep
from raykd.tune.sweep import asha_budget, build_scheduler, experiment_path, should_restore, train_command
from tests.conftest import REPO


def sweep_file(tmp_path, extra: str = ""):
    path = tmp_path / "lr.yaml"
    path.write_text(f"recipe: {REPO / 'recipes/quickstart.yaml'}\nmetric: train/loss\nmode: min\n"
                    f"storage_path: {tmp_path / 'sweeps'}\nsearch_space: {{optim.lr: {{grid: [1.0e-3, 2.0e-3]}}}}\n"
                    + extra)
    return path


def test_experiment_path_and_budget(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path), ["train.batch_size=32", "train.num_workers=2", "train.epochs=3"])
    assert experiment_path(sweep) == f"{tmp_path / 'sweeps'}/lr"
    assert asha_budget(sweep, 1000) == (960, 2880)  # one epoch, the whole run (whole global batches of 64)
    sweep = load_sweep(sweep_file(tmp_path, "scheduler: {grace_period: 128, max_t: 512}\n"))
    assert asha_budget(sweep, 1000) == (128, 512)
    sweep = load_sweep(sweep_file(tmp_path, "scheduler: {grace_period: 1024, max_t: 512}\n"))
    with pytest.raises(ConfigError, match="grace_period"):
        asha_budget(sweep, 1000)


def test_asha_on_samples_or_no_scheduler(tmp_path):
    asha = build_scheduler(load_sweep(sweep_file(tmp_path), ["train.epochs=4"]), 512)
    assert asha._time_attr == "samples" and asha._max_t == 4 * 512  # batch 64 x 2 workers: 4 steps of 128
    assert build_scheduler(load_sweep(sweep_file(tmp_path, "scheduler: {name: none}\n")), 512) is None


def test_an_existing_sweep_is_resumed_only_when_asked(tmp_path):
    exp = experiment_path(load_sweep(sweep_file(tmp_path)))
    assert should_restore(exp, resume=True) is False  # nothing there: --resume starts it
    (tmp_path / "sweeps" / "lr").mkdir(parents=True)
    (tmp_path / "sweeps" / "lr" / "tuner.pkl").write_bytes(b"")  # what Tune checks to restore
    assert should_restore(exp, resume=True) is True
    with pytest.raises(ConfigError, match="pass --resume"):
        should_restore(exp, resume=False)


def test_train_command_quotes_values():
    cmd = train_command(REPO / "recipes/quickstart.yaml", ['loss.name="SigLIP"', "optim.lr=0.001"])
    assert cmd.endswith("quickstart.yaml --set 'loss.name=\"SigLIP\"' --set optim.lr=0.001")
