"""`train.init_from` (`raykd train --init-from`): a new run starts from a checkpoint's weights at step 0, with a
fresh optimiser and schedule; bad checkpoints fail before Ray starts, naming the option."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from raykd.cli import main
from raykd.config import load_config
from raykd.config.loading import config_to_dict
from raykd.models.checkpoint import STATE_FILE
from raykd.train import checkpoint as ckpt
from raykd.train.loop import run_training
from tests.conftest import REPO, tiny_overrides
from tests.train.local import LocalRun

FAST = {"data.builtin": "digits", "data.builtin_train_size": 256, "data.augment": "none", "data.shuffle_buffer": 0,
        "eval.zeroshot.every_n_epochs": 0}


def cfg_for(root, **extra):
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **{**FAST, **extra}))


@pytest.fixture(scope="module")
def trained(builtin_root, tmp_path_factory):
    """(built-in cache, a checkpoint directory after 2 steps of the tiny quickstart model (seed 0), its state)."""
    root = builtin_root
    cfg = cfg_for(root, **{"train.max_steps": 2})
    run = LocalRun(cfg)
    run_training(cfg, run.context())
    directory = tmp_path_factory.mktemp("init-from") / "checkpoint_000000"
    directory.mkdir()
    torch.save(run.checkpoints[-1], directory / STATE_FILE)
    return root, directory, run.checkpoints[-1]


def test_new_run_starts_at_step_0_from_the_checkpoints_weights(trained):
    root, directory, state = trained
    cfg = cfg_for(root, **{"train.max_steps": 1, "train.init_from": str(directory), "run.seed": 1,
                           "eval.before_training": True, "optim.lr": 1e-3})
    seen = []
    run = LocalRun(cfg)
    run_training(cfg, run.context(evaluate=lambda model, epoch: seen.append(copy.deepcopy(model.state_dict())) or {}))
    start = seen[0]  # what evaluation before training saw: the model at step 0
    assert start.keys() == state["model"].keys()
    assert all(torch.equal(start[k], state["model"][k]) for k in start)
    assert [r["step"] for r in run.reports] == [0, 1]  # the step count restarts
    after = run.checkpoints[-1]
    assert after["step"] == 1 and after["scheduler"]["last_epoch"] == 1  # a fresh schedule
    assert {s["step"].item() for s in after["optimizer"]["state"].values()} == {1.0}  # a fresh AdamW
    assert after["optimizer"]["param_groups"][0]["initial_lr"] == 1e-3  # this recipe's optimiser, not the old one


class Queue(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("queue", torch.zeros(3))


def test_loss_state_is_kept_only_for_the_same_loss():
    model, loss = nn.Linear(2, 2), Queue()
    state = {"model": {k: torch.full_like(v, 7.0) for k, v in model.state_dict().items()},
             "loss": {"queue": torch.ones(3)}, "config": {"loss": {"name": "X", "hparams": {"k": 1}}}}
    assert ckpt.init_from(state, {"loss": {"name": "X", "hparams": {"k": 2}}}, model=model, loss=loss) is False
    assert torch.equal(loss.queue, torch.zeros(3)) and torch.equal(model.weight, torch.full((2, 2), 7.0))
    assert ckpt.init_from(state, {"loss": {"name": "X", "hparams": {"k": 1}}}, model=model, loss=loss) is True
    assert torch.equal(loss.queue, torch.ones(3))


def train_cli(root, *args):
    return main(["train", str(REPO / "recipes/quickstart.yaml"), *(f"--set={o}" for o in tiny_overrides(root)),
                 *map(str, args)])


def test_bad_checkpoints_fail_before_training(trained, tmp_path, capsys):
    root, directory, state = trained
    assert train_cli(root, "--init-from", tmp_path / "nope") == 2
    assert f"no raykd checkpoint at {tmp_path / 'nope'}" in capsys.readouterr().err
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / STATE_FILE).write_bytes((directory / STATE_FILE).read_bytes()[:1000])
    assert train_cli(root, "--init-from", cut) == 2
    assert "train.init_from:" in (err := capsys.readouterr().err) and "is incomplete" in err
    assert train_cli(root, "--init-from", directory, "--set", "model.embed_dim=32") == 2
    assert "model.embed_dim: 16 in the checkpoint, 32 here" in capsys.readouterr().err
    assert train_cli(root, "--init-from", directory, "--resume") == 2
    assert "--init-from starts a new run" in capsys.readouterr().err


def test_options_that_do_not_shape_parameters_may_differ(trained):
    root, directory, state = trained
    cfg = cfg_for(root, **{"model.text.lock": True, "model.init_logit_scale": 10.0})
    assert ckpt.read_init_state(directory, config_to_dict(cfg))["step"] == 2
