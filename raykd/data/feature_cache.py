"""Precomputed features of a locked tower: content keys, the on-disk cache and its lookup.

A locked tower whose input is deterministic (captions; images without augmentation) gives the same
features every epoch. The cache stores them once, keyed by the tower's input itself: two 64-bit
multilinear hashes of each input row (`input_keys`: the token ids of a caption, the pixels of a
preprocessed image). A content key, not the sample's shard key, because a sample's input is not fixed by
its key (classification sources caption each sample with a template drawn anew every epoch); so the
lookup needs no key column in the batches and works unchanged under weighted sources, resampling,
episodes, any number of workers and resume: whatever reaches the tower is looked up.

On disk (a local folder or any URI pyarrow reads), written by `raykd.train.feature_cache`:

    <dir>/manifest.json   what the features were computed from (`manifest`); written last, so a
                          folder without it is an unfinished build and never read
    <dir>/parts/*.parquet rows {key int64, check int64, features fixed_size_list<float32>[D]}, written by
                          Ray Data (`feature_table`: plain Arrow types, read back without Ray)

`CachedTowerFeatures.__call__` maps a batch of inputs to their features on the inputs' device and counts the
inputs the cache does not hold on the device; `raise_if_missed` (the training loop calls it before each report)
raises `FeatureCacheMiss` for them (the data changed since the cache was built): features are never made up or
recomputed silently, and no step waits for the host.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
import torch

from raykd.data.sampling import TrainPlan
from raykd.data.shards import is_remote

MANIFEST = "manifest.json"
PARTS = "parts"
FORMAT = 1  # bump when the key function or the layout changes: older caches are then rebuilt
_SEEDS = (0x5EED_0001, 0x5EED_0002)  # the two hashes' weight seeds (key for sorting, check for confirming)


class FeatureCacheMiss(KeyError):
    """An input the cache has no features for."""

    def __str__(self) -> str:  # KeyError quotes its message
        return str(self.args[0])


# ------------------------------------------------------------------ content keys
_WEIGHTS: dict = {}


def _weights(n: int, seed: int, device: torch.device) -> torch.Tensor:
    """n odd int64 weights, the same for a given (n, seed) on every machine."""
    key = (n, seed, str(device))
    if key not in _WEIGHTS:
        g = torch.Generator().manual_seed(seed)
        w = torch.randint(-(2**62), 2**62, (n,), dtype=torch.int64, generator=g) * 2 + 1
        _WEIGHTS[key] = w.to(device)
    return _WEIGHTS[key]


def _int_rows(t: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> int64 [B, n]: integers as they are, floats by their bit patterns (exact, not rounded)."""
    rows = t.reshape(t.shape[0], -1)
    if rows.is_floating_point():
        rows = rows.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[rows.element_size()])
    return rows.to(torch.int64)


def input_keys(inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(key, check), int64 [B] each, of a tower's inputs: a tensor [B, ...] (images) or a dict of them
    (tokens; all keys, in name order). Each is sum_i x_i * w_i mod 2^64 over the row's values with fixed
    random odd weights: computed on the inputs' device, no host sync. Distinct rows share both with
    probability about 2^-120."""
    parts = [inputs[k] for k in sorted(inputs)] if isinstance(inputs, dict) else [inputs]
    rows = torch.cat([_int_rows(p) for p in parts], dim=1)
    # int64 products and sums wrap around (two's complement) on CPU and CUDA: arithmetic mod 2^64
    return tuple((rows * _weights(rows.shape[1], seed, rows.device)).sum(dim=1) for seed in _SEEDS)


# ------------------------------------------------------------------ what a cache was built from
def data_fingerprint(plan: TrainPlan) -> str:
    """sha256 over every shard of every source: URL, sample count, limit and (local files) size and mtime;
    record shards by their records (image paths, captions, labels). Changes when a shard is added, removed,
    rewritten or truncated differently."""
    h = hashlib.sha256()
    for source in plan.sources:
        h.update(repr((source.name, source.labelling())).encode())
        for shard in source.shards:
            stat = ()
            if shard.records is None and not is_remote(shard.url):
                st = os.stat(shard.url)
                stat = (st.st_size, st.st_mtime_ns)
            h.update(repr((shard.url, shard.size, shard.limit, stat, shard.records)).encode())
    return h.hexdigest()


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes and bytes), independent of its device."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def manifest(tower: str, tower_config: dict, weights: str, data: str) -> dict:
    """What a cache's features depend on; a cache is used only when all of it matches."""
    return {"format": FORMAT, "tower": tower, "tower_config": tower_config, "weights_sha256": weights,
            "data_fingerprint": data}


def cache_dir_name(m: dict) -> str:
    """<tower>-<hash of the manifest>: a different tower, weights or data set is a different folder."""
    digest = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16]
    return f"{m['tower']}-{digest}"


def filesystem(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """(pyarrow filesystem, path in it) of a cache folder: a URI, or a local path made absolute."""
    return pyarrow.fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))


def read_manifest(path: str) -> dict | None:
    """The manifest of the cache at `path`, or None when there is none (no cache, or an unfinished build)."""
    fs, root = filesystem(path)
    try:
        with fs.open_input_stream(f"{root}/{MANIFEST}") as f:
            return json.loads(f.read().decode())
    except FileNotFoundError:
        return None


def write_manifest(path: str, m: dict) -> None:
    fs, root = filesystem(path)
    with fs.open_output_stream(f"{root}/{MANIFEST}") as f:
        f.write(json.dumps(m, indent=2, sort_keys=True).encode())


def mismatch(found: dict | None, expected: dict) -> list[str]:
    """The manifest fields that differ (all of them when there is no manifest)."""
    if found is None:
        return ["manifest.json (no finished cache there)"]
    return [k for k in expected if found.get(k) != expected[k]]


def feature_table(key: np.ndarray, check: np.ndarray, features: np.ndarray) -> pa.Table:
    """One part's rows: int64 key and check [N], float32 features [N, D] as a fixed-size list column."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), features.shape[1])
    return pa.table({"key": pa.array(key, pa.int64()), "check": pa.array(check, pa.int64()), "features": column})


# ------------------------------------------------------------------ lookup
class CachedTowerFeatures:
    """Features of a locked tower by content key, on one device: `cache(inputs) -> float32 [B, D]`.

    Args:
        keys, checks: int64 [N] (`input_keys` of the inputs the features were computed from).
        features: float32 [N, D], row i for keys[i].
        where: the cache's folder, for messages.
    """

    def __init__(self, keys: np.ndarray, checks: np.ndarray, features: np.ndarray, where: str):
        keys, first = np.unique(keys, return_index=True)  # sorted for searchsorted; duplicate inputs kept once
        self.keys = torch.as_tensor(keys)
        self.checks = torch.as_tensor(checks[first])
        self.features = torch.as_tensor(np.ascontiguousarray(features[first], dtype=np.float32))
        self.where = where
        self._missed = self._looked_up = None  # device counters since the last `raise_if_missed`

    @classmethod
    def load(cls, path: str, device: torch.device | str = "cpu",
             dtype: torch.dtype | None = None) -> "CachedTowerFeatures":
        fs, root = filesystem(path)
        table = pq.read_table(f"{root}/{PARTS}", filesystem=fs)
        column = table.column("features").combine_chunks()
        feats = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
        return cls(table.column("key").to_numpy(), table.column("check").to_numpy(), feats, path).to(device, dtype)

    def to(self, device, dtype: torch.dtype | None = None) -> "CachedTowerFeatures":
        """On `device`; the features in `dtype` when given (bf16 under bf16 AMP: half the memory, and what the
        locked tower itself would give under autocast)."""
        self.keys, self.checks = self.keys.to(device), self.checks.to(device)
        self.features = self.features.to(device, dtype) if dtype is not None else self.features.to(device)
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def __call__(self, inputs) -> torch.Tensor:
        """The inputs' cached features. A miss is counted on the device and raised by :meth:`raise_if_missed`,
        which the training loop calls before each report, so no step waits for the host."""
        key, check = input_keys(inputs)
        idx = torch.searchsorted(self.keys, key).clamp_(max=len(self.keys) - 1)
        missed = ((self.keys[idx] != key) | (self.checks[idx] != check)).sum()
        self._missed = missed if self._missed is None else self._missed + missed
        self._looked_up = len(key) + (self._looked_up or 0)
        return self.features[idx]

    def raise_if_missed(self) -> None:
        """Raise FeatureCacheMiss if an input since the last call was not in the cache (one host sync)."""
        missed, looked_up = self._missed, self._looked_up
        self._missed = self._looked_up = None
        if missed is not None and int(missed):
            raise FeatureCacheMiss(
                f"{int(missed)} of {looked_up} inputs looked up since the last report are not in the feature cache "
                f"{self.where}: the training data changed since it was built; rebuild it "
                "(model.<tower>.cache_features: true rebuilds on its own, or run `raykd data cache-features RECIPE`)")
