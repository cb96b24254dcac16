"""Shared fixtures: one local Ray instance for all Ray tests, tiny configs, a built-in data root."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


TEST_RAY_CPUS = 4  # 2 train workers + Ray Data tasks; fewer logical CPUs deadlock 2-worker runs


def start_test_ray():
    """The shared local Ray with `TEST_RAY_CPUS` logical CPUs, started once (costs tens of seconds).

    A Ray that something else started with fewer CPUs (e.g. `ray.init()` auto-started by a Ray call
    with the machine's 2 cores) is restarted, so that it cannot starve later 2-worker tests.
    """
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("CPU", 0) < TEST_RAY_CPUS:
        ray.shutdown()
    if not ray.is_initialized():
        ray.init(num_cpus=TEST_RAY_CPUS, include_dashboard=False, log_to_driver=True)
    return ray


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session."""
    yield start_test_ray()


@pytest.fixture(scope="session")
def builtin_root(tmp_path_factory) -> Path:
    """Built-in data sets generated once per session, small, under a temp cache dir."""
    root = tmp_path_factory.mktemp("raykd-cache")
    os.environ["RAYKD_CACHE"] = str(root)
    return root


TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_overrides(root: Path | str, **extra) -> list[str]:
    """--set style overrides turning the quickstart recipe into a seconds-long test run."""
    import json

    clip = json.dumps(TINY_CLIP)
    sets = {
        "model.embed_dim": 16,
        "model.image.model_config": clip, "model.text.model_config": clip,
        "data.builtin_root": str(root), "data.builtin_train_size": 512,
        "train.epochs": 1, "train.batch_size": 32, "train.num_workers": 1,
        "train.log_every_n_steps": 4, "optim.warmup_steps": 2,
        **extra,
    }
    return [f"{k}={v}" for k, v in sets.items()]
