"""Reading checkpoints: a raykd checkpoint loads; a file with a pickled callable is refused, not executed."""
from __future__ import annotations

import os

import pytest
import torch

from raykd.cli import main
from raykd.config import load_config
from raykd.config.loading import config_to_dict
from raykd.models.checkpoint import STATE_FILE, UnsafeCheckpointError, checkpoint_info, load_model, load_state
from raykd.train import checkpoint as ckpt
from raykd.train.loop import LoopContext, setup
from tests.conftest import REPO, tiny_overrides


class CreatesAFile:
    """What a hostile checkpoint can hide: unpickling it calls os.system."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cache = tmp_path_factory.mktemp("builtin")
    cfg = load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(cache))
    c = setup(cfg, LoopContext(epoch_batches=lambda epoch: [], steps_per_epoch=4))
    directory = tmp_path_factory.mktemp("ckpt") / "checkpoint_000001"
    directory.mkdir()
    ckpt.save_state(directory, model=c.model, loss=c.loss, optimizer=c.optimizer, scheduler=c.scheduler,
                    scaler=c.scaler, step=3, epoch=1, batches_done=2, config=config_to_dict(cfg))
    return directory, c.model


def test_a_raykd_checkpoint_loads_with_weights_only(saved):
    directory, model = saved
    state = load_state(directory)
    assert (state["step"], state["epoch"], state["batches_done"]) == (3, 1, 2)
    assert checkpoint_info(directory)[:2] == (3, 1)
    reloaded, _ = load_model(directory)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)


@pytest.mark.parametrize("where", ["model", "config"])
def test_a_checkpoint_with_a_pickled_callable_is_refused_and_never_runs(saved, tmp_path, where):
    directory, _ = saved
    state = load_state(directory)
    marker = tmp_path / "pwned"
    state[where] = {**state[where], "payload": CreatesAFile(marker)}
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    torch.save(state, hostile / STATE_FILE)
    for read in (load_state, lambda d: load_model(d), checkpoint_info):
        with pytest.raises(UnsafeCheckpointError, match=rf"{STATE_FILE}: refused to load.*weights_only=False"):
            read(hostile)
    assert not marker.exists()


def test_raykd_eval_refuses_a_hostile_checkpoint_with_a_clear_error(saved, tmp_path, capsys):
    directory, _ = saved
    state = load_state(directory)
    marker = tmp_path / "pwned"
    state["payload"] = CreatesAFile(marker)
    torch.save(state, tmp_path / STATE_FILE)
    assert main(["eval", "--checkpoint", str(tmp_path), "--tasks", "zeroshot"]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_a_run_directory_resolves_to_its_latest_complete_checkpoint(saved, tmp_path):
    """A crash while a checkpoint was written (or copied to storage) leaves a truncated state.pt: passed over."""
    from raykd.models.checkpoint import find_checkpoint

    directory, _ = saved
    whole = (directory / STATE_FILE).read_bytes()
    for name, data in (("checkpoint_000001", whole), ("checkpoint_000002", whole[: len(whole) // 2])):
        (tmp_path / "checkpoints" / "run" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / "run" / name / STATE_FILE).write_bytes(data)
    assert find_checkpoint(tmp_path).name == "checkpoint_000001"
    (tmp_path / "checkpoints" / "run" / "checkpoint_000001" / STATE_FILE).write_bytes(whole[:100])
    with pytest.raises(FileNotFoundError, match="2 incomplete"):
        find_checkpoint(tmp_path)


def test_save_state_leaves_no_partial_file(saved):
    directory, _ = saved
    assert sorted(p.name for p in directory.iterdir()) == [STATE_FILE]
