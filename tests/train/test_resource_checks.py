"""The trainer's checks of the running Ray's resources, before any worker starts: too few CPUs to leave one for
Ray Data, too few GPUs for the workers. An elastic run needs room for `train.min_workers` only."""
from __future__ import annotations

import pytest

from raykd.config import load_config
from raykd.train import trainer
from tests.conftest import REPO


def cfg(*overrides: str):
    return load_config(REPO / "recipes/quickstart.yaml", list(overrides))


@pytest.fixture
def cluster(monkeypatch):
    """Set what `ray.cluster_resources()` reports; no RAY_ADDRESS (a local Ray is checked)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    resources: dict = {}
    monkeypatch.setattr(trainer.ray, "cluster_resources", lambda: resources)
    return resources


def test_too_few_cpus_for_the_workers_and_ray_data_names_the_option(cluster):
    cluster["CPU"] = 4
    with pytest.raises(ValueError, match=r"the running Ray has 4 CPUs, but train.num_workers x "
                                         r"train.cpus_per_worker = 4 leaves none for Ray Data"):
        trainer.check_cpus_left_for_data(cfg("train.num_workers=2", "train.cpus_per_worker=2"))
    trainer.check_cpus_left_for_data(cfg("train.num_workers=2", "train.cpus_per_worker=1.5"))


def test_an_elastic_run_needs_cpus_for_its_fewest_workers(cluster):
    cluster["CPU"] = 4
    elastic = cfg("train.num_workers=2", "train.min_workers=1", "train.cpus_per_worker=2")
    assert trainer.fewest_workers(elastic) == ("train.min_workers", 1)
    trainer.check_cpus_left_for_data(elastic)  # one worker of 2 CPUs leaves 2 for Ray Data
    with pytest.raises(ValueError, match=r"train.min_workers x train.cpus_per_worker = 4 leaves none"):
        trainer.check_cpus_left_for_data(cfg("train.num_workers=2", "train.min_workers=1", "train.cpus_per_worker=4"))


def test_too_few_gpus_names_the_option_to_lower(cluster):
    cluster["GPU"] = 1
    with pytest.raises(ValueError, match=r"one GPU for each of train.num_workers = 2 workers, but the Ray cluster "
                                         r"has 1 GPU\(s\): set train.num_workers to at most 1"):
        trainer.check_gpus_for_workers(cfg("train.use_gpu=true", "train.num_workers=2"))
    trainer.check_gpus_for_workers(cfg("train.use_gpu=true", "train.num_workers=2", "train.min_workers=1"))
    with pytest.raises(ValueError, match=r"train.min_workers = 2 workers, .* set train.min_workers to at most 1"):
        trainer.check_gpus_for_workers(cfg("train.use_gpu=true", "train.num_workers=4", "train.min_workers=2",
                                           "train.batch_size=12"))
