"""Training from a feature cache: the same first step as without it, the locked tower never runs, caches of
other weights or data are refused (or rebuilt), resume works. One cache is built with Ray Data for the module,
over two weighted sources."""
from __future__ import annotations

import pytest
import torch

from raykd.config import load_config
from raykd.data.feature_cache import read_manifest
from raykd.train import feature_cache_build
from raykd.train.feature_cache import load_feature_caches
from raykd.train.feature_cache_build import prepare_feature_caches
from raykd.train.loop import device_batch, run_training, setup, train_step
from raykd.train.trainer import train_plan
from tests.conftest import REPO, tiny_overrides
from tests.train.local import LocalRun

pytestmark = pytest.mark.ray

SOURCES = '[{builtin: shapes, weight: 2}, {builtin: digits, weight: 1}]'


def make_cfg(root, cached: bool = True, **extra):
    sets = {"data.augment": "none", "data.shuffle_buffer": 0, "data.sources": SOURCES, "data.builtin": "shapes",
            "data.builtin_train_size": 96, "data.samples_per_epoch": 128, "train.batch_size": 32,
            "model.text.lock": "true", "train.precision": "fp32", **extra}
    if cached:
        sets["model.text.cache_features"] = "true"
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **sets))


@pytest.fixture(scope="module")
def cache_root(ray_session, builtin_root, tmp_path_factory):
    """The text tower's cache, built once (Ray Data batch inference) under a fresh root."""
    root = tmp_path_factory.mktemp("features")
    cfg = make_cfg(builtin_root)
    plan, _ = train_plan(cfg)
    paths = prepare_feature_caches(cfg, plan, root=root)
    assert list(paths) == ["text"] and read_manifest(paths["text"])["tower"] == "text"
    return root


def prepared(cfg, root):
    prepare_feature_caches(cfg, train_plan(cfg)[0], root=root)
    return cfg


def first_batch(cfg):
    return next(iter(LocalRun(cfg).epoch_batches(0)))


def test_first_step_is_the_same_with_and_without_the_cache(builtin_root, cache_root):
    plain_cfg = make_cfg(builtin_root, cached=False)
    cached_cfg = prepared(make_cfg(builtin_root), cache_root)
    batch = first_batch(plain_cfg)
    run = LocalRun(plain_cfg)
    plain, cached = setup(plain_cfg, run.context()), setup(cached_cfg, run.context())
    batch = device_batch(batch, torch.device("cpu"), plain.model.image_spec)  # uint8 -> normalised, as the loop does

    def never(*args, **kwargs):
        raise AssertionError("the cached text tower ran")

    cached.model.text.forward = never
    loss_plain, _ = train_step(plain, batch, plain_cfg.optim.grad_clip_norm)
    loss_cached, _ = train_step(cached, batch, cached_cfg.optim.grad_clip_norm)
    torch.testing.assert_close(loss_cached, loss_plain, rtol=1e-6, atol=1e-6)
    grads = {n: p.grad for n, p in plain.model.named_parameters() if p.grad is not None}
    assert any(n.startswith("text_head") for n in grads) and any(n.startswith("image.") for n in grads)
    for name, p in cached.model.named_parameters():
        assert (p.grad is None) == (name not in grads), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-5, atol=1e-6, msg=name)


def test_episodes_train_from_the_cache_and_resume_exactly(builtin_root, cache_root):
    # the cache is keyed by content: one built for resampled epochs serves episodes of the same sources
    cfg = prepared(make_cfg(builtin_root, **{"data.samples_per_epoch": 0, "data.episode_size": 96,
                                             "train.epochs": 2}), cache_root)
    full = LocalRun(cfg)
    run_training(cfg, full.context())
    resumed = LocalRun(cfg, resume_state=full.checkpoints[0])
    run_training(cfg, resumed.context())
    a, b = full.checkpoints[-1], resumed.checkpoints[-1]
    assert a["step"] == b["step"] == 2 * full.steps_per_epoch
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_cache_of_other_weights_is_refused(builtin_root, cache_root):
    path = prepared(make_cfg(builtin_root), cache_root).model.text.feature_cache
    other = make_cfg(builtin_root, cached=False, **{"run.seed": 1, "model.text.feature_cache": path})
    with pytest.raises(ValueError, match=r"model.text.feature_cache: .* \(weights_sha256 differ\).* would be stale"):
        prepare_feature_caches(other, train_plan(other)[0], root=cache_root)
    model = setup(make_cfg(builtin_root, cached=False, **{"run.seed": 1}), LocalRun(other).context()).model
    with pytest.raises(ValueError, match=r"built from other text tower weights"):
        load_feature_caches(other, model, torch.device("cpu"))


def test_a_cache_of_other_data_is_refused_or_rebuilt(builtin_root, cache_root, monkeypatch):
    path = prepared(make_cfg(builtin_root), cache_root).model.text.feature_cache
    fewer = {"data.dataset_size": 150}
    explicit = make_cfg(builtin_root, cached=False, **{**fewer, "model.text.feature_cache": path})
    with pytest.raises(ValueError, match=r"data_fingerprint differ"):
        prepare_feature_caches(explicit, train_plan(explicit)[0], root=cache_root)
    built = []
    monkeypatch.setattr(feature_cache_build, "build_feature_cache", lambda *args: built.append(args[4]))
    rebuilt = make_cfg(builtin_root, **{**fewer, "model.text.feature_cache": path})
    prepare_feature_caches(rebuilt, train_plan(rebuilt)[0], root=cache_root)
    assert len(built) == 1 and built[0] != path and rebuilt.model.text.feature_cache == built[0]


def test_an_image_tower_without_augmentation_trains_from_its_cached_features(builtin_root):
    """The image side of the same machinery, without Ray: the builder's actor run in-process on one batch."""
    from raykd.data.feature_cache import CachedTowerFeatures
    from raykd.train.feature_cache_build import TowerFeatures, reference_towers

    plain_cfg = make_cfg(builtin_root, cached=False, **{"model.image.lock": "true"})
    cached_cfg = make_cfg(builtin_root, cached=False, **{"model.image.lock": "true",
                                                         "model.image.cache_features": "true"})
    batch = first_batch(plain_cfg)
    actor = TowerFeatures(cached_cfg.model.image, "image", reference_towers(cached_cfg)["image"].state_dict())
    table = actor({k: v.numpy() for k, v in batch.items()})
    column = table.column("features").combine_chunks()
    cache = CachedTowerFeatures(table.column("key").to_numpy(), table.column("check").to_numpy(),
                         column.flatten().to_numpy().reshape(len(column), -1), "in-memory")
    run = LocalRun(plain_cfg)
    plain, cached = setup(plain_cfg, run.context()), setup(plain_cfg, run.context())
    batch = device_batch(batch, torch.device("cpu"), plain.model.image_spec)  # uint8 -> normalised, as the loop does
    cached.objective.feature_caches["image"] = cache
    cached.model.image.forward = lambda *a, **k: pytest.fail("the cached image tower ran")
    loss_plain, _ = train_step(plain, batch, plain_cfg.optim.grad_clip_norm)
    loss_cached, _ = train_step(cached, batch, plain_cfg.optim.grad_clip_norm)
    torch.testing.assert_close(loss_cached, loss_plain, rtol=1e-6, atol=1e-6)
    for (name, p), (_, q) in zip(plain.model.named_parameters(), cached.model.named_parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
