"""Fixtures for the ELEVATER tests: a tiny untrained checkpoint, and built-ins in ELEVATER layout."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO, tiny_overrides


def make_tiny_model(root):
    from raykd.config import load_config
    from raykd.models.dual_encoder import build_dual_encoder

    cfg = load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root))
    torch.manual_seed(0)
    return build_dual_encoder(cfg.model), cfg


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A raykd checkpoint of the tiny CLIP of the tests (random weights), saved without training."""
    from raykd.config import config_to_dict
    from raykd.train.checkpoint import save_state

    root = tmp_path_factory.mktemp("elevater-ckpt")
    model, cfg = make_tiny_model(root)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    directory = root / "checkpoint_000000"
    directory.mkdir()
    save_state(directory, model=model, loss=torch.nn.Identity(), optimizer=opt, scheduler=sched, scaler=None,
               step=0, epoch=0, batches_done=0, config=config_to_dict(cfg))
    return directory


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from raykd.models.checkpoint import load_model

    return load_model(tiny_checkpoint)[0]


@pytest.fixture(scope="session")
def builtin_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("elevater-builtin-cache")


@pytest.fixture(scope="session")
def builtin_data_root(tmp_path_factory, builtin_cache):
    """shapes (256 training images) and digits (200) in ELEVATER layout."""
    from raykd.eval.elevater.builtin import write_builtin

    root = tmp_path_factory.mktemp("elevater-data")
    write_builtin("shapes", root, train_size=256, cache_root=builtin_cache)
    write_builtin("digits", root, train_size=200, cache_root=builtin_cache)
    return root
