"""The driver's side of the feature cache: pick, check and build the caches of a run's locked towers.

`prepare_feature_caches(cfg, plan)` runs before the trainer starts, for each tower with
`model.<tower>.cache_features: true` or `model.<tower>.feature_cache: DIR`:

  * the expected manifest is computed: the tower's options, a sha256 of its weights (the tower built exactly as
    the train workers build it: same seed, same config) and a fingerprint of the training data (every shard's
    URL, size and mtime; `raykd.data.feature_cache.data_fingerprint`);
  * `feature_cache: DIR` (e.g. from `raykd data cache-features`) is used only when its manifest matches; a
    mismatch fails, naming what differs: a folder the user chose is never silently trained from when stale;
  * `cache_features: true` uses `$RAYKD_CACHE/features/<tower>-<hash of the manifest>/`, building it when it has
    no finished manifest: other weights or data give another folder, so a mismatch rebuilds and a stale cache
    is never read. `model.<tower>.feature_cache` is set to the folder the workers then open.

Building is Ray Data batch inference: every sample of the training sources once (`full` epoch, no
augmentation; plus every template x class caption of classification sources, whose captions are drawn per
epoch), through `map_batches` over an actor pool holding the tower (one actor per GPU when the cluster has
GPUs), written as Parquet parts, then the manifest.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs
import ray
import ray.data
import torch

from raykd.config.schema import Config
from raykd.data.feature_cache import (PARTS, cache_dir_name, data_fingerprint, feature_table, filesystem,
                                      input_keys, manifest, mismatch, read_manifest, weights_hash, write_manifest)
from raykd.data.pipeline import build_train_dataset
from raykd.data.transforms import normalise
from raykd.data.run_state import DataRunState
from raykd.data.sampling import TrainPlan
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.towers import build_tower, describe_tower
from raykd.train.feature_cache import cached_towers, tower_identity
from raykd.train.loop import NON_TOKEN_KEYS, seed_everything


def default_cache_root() -> Path:
    """`$RAYKD_CACHE/features` or `~/.cache/raykd/features`."""
    return Path(os.environ.get("RAYKD_CACHE") or Path.home() / ".cache" / "raykd") / "features"


def reference_towers(cfg: Config) -> dict[str, torch.nn.Module]:
    """The towers exactly as `raykd.train.loop.setup` builds them (same seed first: random-init weights match)."""
    seed_everything(cfg.run.seed)
    model = build_dual_encoder(copy.deepcopy(cfg.model))
    return {"image": model.image, "text": model.text}


def expected_manifests(cfg: Config, plan: TrainPlan, towers: dict) -> dict[str, dict]:
    data = data_fingerprint(plan)
    return {name: manifest(name, tower_identity(getattr(cfg.model, name)), weights_hash(towers[name]), data)
            for name in cached_towers(cfg)}


def prepare_feature_caches(cfg: Config, plan: TrainPlan, root: str | Path | None = None) -> dict[str, str]:
    """Check or build the cache of every cached tower and point `model.<tower>.feature_cache` at it;
    returns {tower: folder}. Starts Ray Data jobs only for caches that must be built.

    Raises:
        ValueError: `model.<tower>.feature_cache` names a cache built from other weights, options or data.
    """
    names = cached_towers(cfg)
    if not names:
        return {}
    towers = reference_towers(cfg)
    out = {}
    for name, expected in expected_manifests(cfg, plan, towers).items():
        tower_cfg = getattr(cfg.model, name)
        if tower_cfg.feature_cache:
            differs = mismatch(read_manifest(tower_cfg.feature_cache), expected)
            if not differs:
                out[name] = tower_cfg.feature_cache
                continue
            if not tower_cfg.cache_features:
                raise ValueError(
                    f"model.{name}.feature_cache: {tower_cfg.feature_cache} does not match this run ({', '.join(differs)} "
                    "differ): its features were computed from another tower or other data and would be stale; "
                    "rebuild it with `raykd data cache-features RECIPE`, or set model."
                    f"{name}.cache_features: true to let raykd build one")
        path = str(Path(root or default_cache_root()) / cache_dir_name(expected))
        if mismatch(read_manifest(path), expected):
            build_feature_cache(cfg, plan, name, towers[name], path, expected)
        else:
            print(f"[raykd] model.{name}: features cached in {path}", flush=True)
        tower_cfg.feature_cache = out[name] = path
    return out


class TowerFeatures:
    """Ray Data actor: holds one tower (on its GPU when it has one) and maps input batches to
    {key, check, features}; `inputs` picks the tower's input from a batch as the training step does."""

    def __init__(self, tower_cfg, name: str, state):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        tower_cfg = copy.deepcopy(tower_cfg)
        tower_cfg.pretrained = tower_cfg.weights = ""  # the driver's weights replace whatever it would load
        self.tower = build_tower(tower_cfg, name)
        self.tower.load_state_dict(ray.get(state) if isinstance(state, ray.ObjectRef) else state)
        self.tower.to(self.device).eval()
        self.name = name
        self.image_spec = describe_tower(tower_cfg, name).image_spec if name == "image" else None

    def inputs(self, batch: dict):
        # torch.tensor copies: Ray Data's batches are read-only arrays
        if self.name == "image":
            # normalised on the device as the training step's `device_batch` does: the key hashes the tower's input
            return normalise(torch.tensor(batch["image"]).to(self.device), self.image_spec)
        return {k: torch.tensor(v).to(self.device) for k, v in batch.items() if k not in NON_TOKEN_KEYS}

    @torch.no_grad()
    def __call__(self, batch: dict) -> pa.Table:
        inputs = self.inputs(batch)
        key, check = input_keys(inputs)
        feats = self.tower(inputs).float()
        return feature_table(key.cpu().numpy(), check.cpu().numpy(), feats.cpu().numpy())


def _class_captions(plan: TrainPlan, tokenize) -> ray.data.Dataset | None:
    """Token rows of every template x class caption of the classification sources, or None."""
    captions = sorted({t.format(c) for s in plan.sources if s.label_mode == "class"
                       for t in s.templates for c in s.classnames})
    if not captions:
        return None
    return ray.data.from_items([{"caption": c} for c in captions]).map_batches(
        lambda b: {k: np.asarray(v, dtype=np.int64) for k, v in tokenize(list(b["caption"])).items()},
        batch_format="numpy")


def tower_inputs(cfg: Config, plan: TrainPlan, name: str) -> ray.data.Dataset:
    """Every input the tower gets in training, once per sample: the training pipeline over one un-augmented,
    unshuffled pass of every source (plus the class captions, for the text tower)."""
    image_spec = describe_tower(cfg.model.image, "image").image_spec
    tokenize = describe_tower(cfg.model.text, "text").tokenizer
    full = TrainPlan(plan.sources, "full", seed=plan.seed)
    ds = build_train_dataset(full, image_spec, tokenize, augment="none", on_error=cfg.data.on_error,
                             batch_size=cfg.data.preprocess_batch_size, num_cpus=cfg.data.cpus_per_read_task,
                             concurrency=cfg.data.read_concurrency or None,
                             state=DataRunState(f"feature-cache-{name}"))
    if name == "image":
        return ds.select_columns(["image"])
    token_names = sorted(tokenize(["a"]))
    ds = ds.select_columns(token_names)
    prompts = _class_captions(plan, tokenize)
    return ds.union(prompts) if prompts is not None else ds


def build_feature_cache(cfg: Config, plan: TrainPlan, name: str, tower: torch.nn.Module, path: str,
                        expected: dict) -> None:
    """Compute and write the features of `tower` over the training data to `path`, manifest last."""
    print(f"[raykd] model.{name}: computing its features once into {path} (Ray Data batch inference)", flush=True)
    fs, root = filesystem(path)
    fs.create_dir(root)
    if fs.get_file_info(f"{root}/{PARTS}").type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(f"{root}/{PARTS}")  # an unfinished build (no manifest): start over
    gpus = int(ray.cluster_resources().get("GPU", 0))
    state = ray.put({k: v.detach().cpu() for k, v in tower.state_dict().items()})
    features = tower_inputs(cfg, plan, name).map_batches(
        TowerFeatures, fn_constructor_args=(getattr(cfg.model, name), name, state),
        batch_size=cfg.train.batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(gpus, 1)), num_gpus=1 if gpus else 0,
        num_cpus=1 if gpus else cfg.train.cpus_per_worker)
    features.write_parquet(f"{path.rstrip('/')}/{PARTS}" if "://" in path else f"{root}/{PARTS}")
    write_manifest(path, expected)
    DataRunState(f"feature-cache-{name}").close()

