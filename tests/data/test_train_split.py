"""What the Ray Train workers read: 2 workers split each epoch exactly; episodes advance per epoch;
steps per epoch follow the epoch mode."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from raykd.config import load_config
from raykd.data.shards import write_shards
from raykd.train.trainer import build_dataset, train_plan
from tests.conftest import REPO, tiny_overrides

from .conftest import good_samples


def cfg_for(tmp_path, **extra):
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(tmp_path / "cache", **{
        "data.sources": json.dumps([str(tmp_path / "shards")]), "train.num_workers": 2, "train.batch_size": 8,
        "train.epochs": 2, "eval.during_training": False, "data.augment": "none", **extra}))


@pytest.fixture
def shards(tmp_path):
    write_shards(good_samples(0, 64), tmp_path / "shards", shard_size=10)  # labels 0..63, 7 shards
    return tmp_path


def test_steps_per_epoch_follow_the_epoch_mode(shards):
    assert train_plan(cfg_for(shards))[1] == 64
    assert train_plan(cfg_for(shards, **{"data.samples_per_epoch": 1000}))[1] == 1000
    assert train_plan(cfg_for(shards, **{"data.episode_size": 24}))[1] == 24
    assert train_plan(cfg_for(shards, **{"data.dataset_size": 40}))[1] == 40


def record_labels(config: dict) -> None:
    """Train-loop stand-in: iterate each epoch as the real loop does, write each rank's labels."""
    import ray.train

    from raykd.config.loading import build_config
    from raykd.train.ray_context import ray_context

    cfg = build_config(config["config"])
    ctx = ray_context(cfg, config)
    for epoch in range(cfg.train.epochs):
        labels = [int(x) for batch in ctx.epoch_batches(epoch) for x in batch["label"]]
        Path(config["out"], f"rank{ctx.rank}-epoch{epoch}.json").write_text(json.dumps(labels))
    ray.train.report({"epochs": cfg.train.epochs})


def run_workers(cfg, tmp_path, name: str) -> dict[int, list[list[int]]]:
    """{epoch: [rank 0's labels, rank 1's labels]} of a 2-worker run of `record_labels`."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from raykd.config.loading import config_to_dict
    from raykd.data.run_state import DataRunState

    out = tmp_path / name
    out.mkdir()
    plan, _ = train_plan(cfg)
    state = DataRunState(name)
    state.reset()
    TorchTrainer(
        record_labels,
        train_loop_config={"config": config_to_dict(cfg), "steps_per_epoch": 0, "data_state": state,
                           "out": str(out)},
        scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(name=name, storage_path=str(tmp_path / "storage")),
        datasets={"train": build_dataset(cfg, plan, state)},
    ).fit()
    return {e: [json.loads((out / f"rank{r}-epoch{e}.json").read_text()) for r in range(2)]
            for e in range(cfg.train.epochs)}


@pytest.mark.ray
@pytest.mark.slow
def test_two_workers_see_every_sample_once_per_epoch_and_episodes_advance(ray_local, shards):
    full = run_workers(cfg_for(shards), shards, "split-full")
    for epoch, (rank0, rank1) in full.items():
        assert len(rank0) == len(rank1) == 32  # 64 samples, batch 8 x 2 workers: nothing dropped
        assert sorted(rank0 + rank1) == list(range(64)), epoch  # each sample exactly once, across workers
    assert full[0] != full[1]  # reshuffled per epoch

    episodes = run_workers(cfg_for(shards, **{"data.episode_size": 32}), shards, "split-episodes")
    seen = [sorted(rank0 + rank1) for rank0, rank1 in episodes.values()]
    assert [len(s) for s in seen] == [32, 32] and sorted(seen[0] + seen[1]) == list(range(64))
