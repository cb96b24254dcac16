"""Sweep files: format, validation before Ray (errors name the key), trial overrides, search space."""
from __future__ import annotations

import textwrap

import pytest

from raykd.config.loading import ConfigError, load_config
from raykd.tune.spec import (SweepConfig, build_trial_config, check_sweep, grid_size, is_sweep_file, load_sweep,
                             param_space, parse_domain, trial_overrides)
from tests.conftest import REPO

SWEEPS = sorted((REPO / "recipes" / "sweeps").glob("*.yaml"))


def write_sweep(tmp_path, body: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(f"recipe: {REPO / 'recipes/quickstart.yaml'}\nmetric: zeroshot/shapes/top1\n"
                    + textwrap.dedent(body))
    return path


def test_repo_sweeps_load_and_are_sweeps():
    assert len(SWEEPS) >= 2
    for path in SWEEPS:
        sweep = load_sweep(path)
        assert is_sweep_file(path) and sweep.keys and grid_size(sweep) >= 4
    assert not is_sweep_file(REPO / "recipes/quickstart.yaml")


def test_losses_sweep_is_loss_by_lr():
    sweep = load_sweep(REPO / "recipes/sweeps/losses.yaml")
    assert set(sweep.keys) == {"loss.name", "optim.lr"} and sweep.spec.metric == "zeroshot/shapes/top1"


def test_overrides_round_trip_through_the_recipe_loader():
    params = {"loss.name": "SigLIP", "optim.lr": 1e-05, "model.image.head.n_layers": 2, "data.augment": "none",
              "loss.hparams": {"init_logit_bias": -5.0}}
    cfg = load_config(REPO / "recipes/quickstart.yaml", trial_overrides(params))
    assert (cfg.loss.name, cfg.optim.lr, cfg.model.image.head.n_layers, cfg.data.augment) == ("SigLIP", 1e-05, 2, "none")
    assert cfg.loss.hparams == {"init_logit_bias": -5.0}


def test_numpy_values_become_plain_overrides():
    np = pytest.importorskip("numpy")
    assert trial_overrides({"optim.lr": np.float64(0.5), "train.epochs": np.int64(3)}) == ["optim.lr=0.5", "train.epochs=3"]


def test_set_and_cli_overrides_apply_in_order(tmp_path):
    path = write_sweep(tmp_path, """
        set: {train.epochs: 3, train.num_workers: 1}
        search_space: {optim.lr: {grid: [1.0e-3, 2.0e-3]}}
    """)
    sweep = load_sweep(path, ["train.epochs=7"])
    cfg = build_trial_config(sweep.base, {"optim.lr": 2e-3})
    assert (cfg.train.epochs, cfg.train.num_workers, cfg.optim.lr) == (7, 1, 2e-3)
    assert sweep.fixed == ["train.epochs=3", "train.num_workers=1", "train.epochs=7"]
    assert sweep.name == "s" and sweep.recipe == REPO / "recipes/quickstart.yaml"


@pytest.mark.parametrize("space, message", [
    ("{loss.nmae: {grid: [InfoNCE]}}", "unknown config key 'loss.nmae'; did you mean 'loss.name'"),
    ("{optim.lr: {grid: [fast]}}", "'optim.lr' must be float"),
    ("{loss.name: {choice: [InfoNCE, InfoNCEE]}}", "loss.name: unknown loss 'InfoNCEE'"),
    ("{model.image.head.n_layers: {uniform: [0, 3]}}", "'model.image.head.n_layers' must be int"),
    ("{optim.lr: {loguniform: [0, 1.0e-3]}}", "search_space.optim.lr.loguniform: bounds must be positive"),
    ("{optim.lr: {uniform: [1.0e-3, 1.0e-4]}}", "low < high"),
    ("{optim.lr: {between: [1, 2]}}", "search_space.optim.lr: expected a mapping with one of"),
    ("{optim.lr: {grid: []}}", "search_space.optim.lr.grid: expected a non-empty list"),
    ("{}", "`search_space` is empty"),
])
def test_bad_search_space_fails_naming_the_key(tmp_path, space, message):
    path = write_sweep(tmp_path, f"search_space: {space}\n")
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert message in str(err.value)


@pytest.mark.parametrize("body, message", [
    ("metric: zeroshot/shapes/top1\nset: {eval.zeroshot.every_n_epochs: 0}\n", "is never reported"),
    ("metric: train/los\n", "did you mean 'train/loss'"),
    ("mode: maximum\n", "'mode' must be one of ['max', 'min']"),
    ("trials: 4\n", "unknown config key 'trials'"),
    ("scheduler: {name: asha, reduction_factor: 1}\n", "reduction_factor must be > 1"),
    ("set: {train.epoch: 3}\n", "unknown config key 'train.epoch'"),
])
def test_bad_sweep_options(tmp_path, body, message):
    path = write_sweep(tmp_path, "search_space: {optim.lr: {grid: [1.0e-3]}}\n" + body)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert message in str(err.value)


def test_a_recipe_is_not_a_sweep(tmp_path):
    with pytest.raises(ConfigError, match="not a sweep file"):
        load_sweep(REPO / "recipes/quickstart.yaml")


def test_param_space_kinds_and_grid_size(tmp_path):
    from ray import tune

    path = write_sweep(tmp_path, """
        search_space:
          loss.name: {grid: [InfoNCE, SigLIP]}
          optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
          optim.weight_decay: {uniform: [0.0, 0.2]}
          model.image.head.n_layers: {choice: [0, 1, 2]}
        num_samples: 3
    """)
    sweep = load_sweep(path)
    space = param_space(sweep)
    assert space["loss.name"] == {"grid_search": ["InfoNCE", "SigLIP"]}
    assert isinstance(space["optim.lr"], tune.search.sample.Float) and space["optim.lr"].lower == 1e-4
    assert isinstance(space["model.image.head.n_layers"], tune.search.sample.Categorical)
    assert grid_size(sweep) == 6


def test_parse_domain_returns_bounds_as_floats():
    assert parse_domain("optim.lr", {"uniform": [0, 1]}) == ("uniform", [0.0, 1.0])


def test_check_sweep_builds_every_model_value():
    report = check_sweep(REPO / "recipes/sweeps/heads-embed-dim-shapes.yaml")
    assert "OK" in report and "12 trial(s)" in report and "trainable" in report


def test_sweep_config_defaults():
    spec = SweepConfig()
    assert spec.scheduler.name == "asha" and spec.num_samples == 1 and spec.mode == "max"
