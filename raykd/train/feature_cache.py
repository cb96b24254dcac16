"""The train workers' side of the feature cache: open each cached tower's features and check they were
computed from this very tower (`load_feature_caches`); the step then looks them up instead of running the
tower (`raykd.train.objective.Objective`). Building and choosing the cache is the driver's side
(`raykd.train.feature_cache_build`); storage and lookup are `raykd.data.feature_cache`."""
from __future__ import annotations

import dataclasses

import torch

from raykd.config.schema import Config, TowerConfig
from raykd.data.feature_cache import CachedTowerFeatures, read_manifest, weights_hash
from raykd.models.dual_encoder import DualEncoder

# options that do not change a locked tower's output (the head trains on top of the cached features)
_NOT_FEATURES = ("head", "cache_features", "feature_cache", "grad_checkpointing", "cache_dir")


def cached_towers(cfg: Config) -> list[str]:
    """The towers trained from a feature cache ('image', 'text')."""
    return [name for name in ("image", "text")
            if getattr(cfg.model, name).cache_features or getattr(cfg.model, name).feature_cache]


def tower_identity(tower: TowerConfig) -> dict:
    """The tower options its features depend on (what a cache's manifest records)."""
    return {k: v for k, v in dataclasses.asdict(tower).items() if k not in _NOT_FEATURES}


def load_feature_caches(cfg: Config, model: DualEncoder, device: torch.device,
                        dtype: torch.dtype | None = None) -> dict[str, CachedTowerFeatures]:
    """{tower: CachedTowerFeatures on `device`, features in `dtype` (the AMP dtype; None: float32)} for the towers
    with `model.<tower>.feature_cache` set (the driver sets it for `cache_features: true`).

    Raises:
        ValueError: naming the option, when a cached tower is not locked, or the cache was computed from other
            weights or tower options than this model's (it would train on features of another tower).
    """
    caches = {}
    for name in cached_towers(cfg):
        option = f"model.{name}.feature_cache"
        path = getattr(cfg.model, name).feature_cache
        if not path:
            raise ValueError(f"model.{name}.cache_features is set but {option} is empty: the driver builds the cache "
                             "before training (raykd.train.trainer), or run `raykd data cache-features RECIPE`")
        if not model.locked[name]:
            raise ValueError(f"{option}: the {name} tower has trainable parameters; only a locked tower's "
                             "features can be cached")
        found = read_manifest(path)
        if found is None:
            raise ValueError(f"{option}: {path} holds no finished feature cache (no manifest.json)")
        if found.get("tower") != name or found.get("tower_config") != tower_identity(getattr(cfg.model, name)):
            raise ValueError(f"{option}: {path} was built for another {name} tower configuration "
                             f"({found.get('tower')}: {found.get('tower_config')}); rebuild it")
        ours = weights_hash(getattr(model, name))
        if found.get("weights_sha256") != ours:
            raise ValueError(f"{option}: {path} was built from other {name} tower weights (sha256 "
                             f"{str(found.get('weights_sha256'))[:12]}, this model's {ours[:12]}): its features "
                             "would be stale; rebuild it (cache_features: true, or `raykd data cache-features`)")
        caches[name] = CachedTowerFeatures.load(path, device, dtype)
    return caches
