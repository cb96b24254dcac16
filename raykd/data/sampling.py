"""Which samples each epoch reads: the `TrainPlan` of resolved sources and its per-epoch work units.

A unit is one shard read by one task: {"source", "url", "records", "limit", "order", "seed"}: the
shard's samples (its first `limit` ones, if set), then, if `order` = (perm seed, n, lo, hi), those
at positions `permutation_n(perm seed)[lo:hi]` (`unit_positions`), else all of them in file order.
Units stay a few bytes whatever the shard size; a record shard's unit ships just the records it reads.

Three modes, each a pure function of (sources, seed, epoch):

    full      every sample of every source once per epoch; `shuffle` permutes the units and the
              samples inside each unit, differently every epoch
    resample  a virtual epoch of `epoch_size` samples drawn with replacement: source i contributes
              its share (weight_i / sum of weights, or size_i / total), drawn shard by shard: a
              shard is picked uniformly and read whole (in a fresh order), so every sample of a
              source is equally likely, until the share is reached (the last shard is cut). Like
              webdataset's resampling, IO stays whole sequential shards on huge data sets
    episode   an episode of `epoch_size` samples drawn without replacement: each source is an endless
              stream of passes, each pass a fresh permutation of its shards and of the samples in
              each shard; episode e takes the next share of every source's stream, so consecutive
              episodes cover a source before repeating any of its samples

`dataset_size` truncation keeps each source's first samples (in shard order), in proportion to its
size, and is applied once, before any mode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from raykd.data.shards import validate_shards
from raykd.data.sources import Shard, Source, resolve_sources, tar_shards

MODES = ("full", "resample", "episode")


def apportion(total: int, shares) -> list[int]:
    """Split `total` into integers proportional to `shares` (largest remainder; ties to the first)."""
    shares = np.asarray(shares, dtype=np.float64)
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def truncate(sources: list[Source], dataset_size: int) -> list[Source]:
    """Keep `dataset_size` samples: each source's first ones, in proportion to source size."""
    total = sum(s.size for s in sources)
    if not dataset_size or dataset_size >= total:
        return sources
    out = []
    for source, keep in zip(sources, apportion(dataset_size, [s.size for s in sources])):
        shards = []
        for shard in source.shards:
            if keep <= 0:
                break
            n = min(shard.size, keep)
            if shard.records is not None:
                shards.append(replace(shard, size=n, records=shard.records[:n]))
            else:
                shards.append(replace(shard, size=n, limit=n if n < shard.size else shard.limit))
            keep -= n
        out.append(replace(source, shards=shards))
    return out


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _seed(*key) -> int:
    return int(_rng(*key).integers(2**31))


def unit_positions(unit: dict) -> np.ndarray | None:
    """Positions (in the shard's file order) a unit reads, in reading order; None: all, in file order."""
    if unit.get("order") is None:
        return None
    perm_seed, n, lo, hi = unit["order"]
    return np.random.default_rng(perm_seed).permutation(n)[lo:hi]


@dataclass
class TrainPlan:
    """Resolved sources + how epochs draw from them. `epoch_size` is the samples in one epoch
    (before skipped bad samples): the sum of sizes, `samples_per_epoch` or `episode_size`."""

    sources: list[Source]
    mode: str = "full"
    epoch_size: int = 0
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "full":
            self.epoch_size = sum(s.size for s in self.sources)

    @property
    def skipped(self) -> dict[str, dict[str, int]]:
        """{shard url: {reason: n}} of the shards left out while resolving the sources (empty files)."""
        return {url: reasons for source in self.sources for url, reasons in source.skipped.items()}

    @property
    def shard_urls(self) -> list[str]:
        return [shard.url for source in self.sources for shard in source.shards]

    def shares(self) -> list[int]:
        """Samples each source contributes to one epoch."""
        if self.mode == "full":
            return [s.size for s in self.sources]
        weights = [s.weight for s in self.sources]
        if any(w is None for w in weights):
            weights = [s.size for s in self.sources]
        return apportion(self.epoch_size, weights)

    def units(self, epoch: int, shuffle: bool = False) -> list[dict]:
        """The work units of `epoch`; in a sampled mode, or with `shuffle`, in a seeded random order."""
        units = []
        for i, (source, n) in enumerate(zip(self.sources, self.shares())):
            if self.mode == "full":
                units += self._full(i, epoch, shuffle)
            elif self.mode == "resample":
                units += self._resample(i, epoch, n)
            else:
                units += self._episode(i, epoch * n, n)
        if shuffle or self.mode != "full":
            order = _rng(self.seed, epoch, 1).permutation(len(units))
            units = [units[k] for k in order]
        for k, unit in enumerate(units):
            unit["seed"] = _seed(self.seed, epoch, 2, k)
        return units

    def _unit(self, i: int, shard: Shard, perm_seed: int | None = None, lo: int = 0, hi: int | None = None) -> dict:
        """Unit reading `shard` whole (perm_seed None), or positions [lo, hi) of its permutation by `perm_seed`."""
        hi = shard.size if hi is None else hi
        order = None if perm_seed is None else (int(perm_seed), shard.size, int(lo), int(hi))
        unit = {"source": i, "url": shard.url, "records": shard.records, "limit": shard.limit, "order": order}
        if shard.records is not None and order is not None:  # ship only the records this unit reads
            unit["records"], unit["order"] = tuple(shard.records[j] for j in unit_positions(unit)), None
        return unit

    def _full(self, i: int, epoch: int, shuffle: bool) -> list[dict]:
        return [self._unit(i, shard, _seed(self.seed, epoch, 3, i, j) if shuffle else None)
                for j, shard in enumerate(self.sources[i].shards)]

    def _resample(self, i: int, epoch: int, n: int) -> list[dict]:
        shards = self.sources[i].shards
        nonempty = [j for j, s in enumerate(shards) if s.size]
        rng = _rng(self.seed, epoch, 4, i)
        units = []
        while n > 0:
            j = nonempty[int(rng.integers(len(nonempty)))]
            take = min(n, shards[j].size)
            units.append(self._unit(i, shards[j], int(rng.integers(2**31)), 0, take))
            n -= take
        return units

    def _episode(self, i: int, start: int, n: int) -> list[dict]:
        """Samples [start, start + n) of source i's endless stream of permuted passes."""
        shards = self.sources[i].shards
        size = self.sources[i].size
        units = []
        while n > 0:
            epoch_pass, offset = divmod(start, size)
            order = _rng(self.seed, epoch_pass, 5, i).permutation(len(shards))
            ends = np.cumsum([shards[j].size for j in order])
            stop = min(offset + n, size)
            pos = int(np.searchsorted(ends, offset, side="right"))
            while pos < len(order) and ends[pos] - shards[order[pos]].size < stop:
                j = int(order[pos])
                first = ends[pos] - shards[j].size
                lo, hi = max(offset, first) - first, min(stop, ends[pos]) - first
                units.append(self._unit(i, shards[j], _seed(self.seed, epoch_pass, 6, i, j), lo, hi))
                pos += 1
            n, start = n - (stop - offset), start + (stop - offset)
        return units


def plan_from_config(cfg, seed: int = 0) -> TrainPlan:
    """The `TrainPlan` of a `DataConfig` (resolving sources; generates built-in data on first use)."""
    sources = truncate(resolve_sources(cfg), cfg.dataset_size)
    if cfg.samples_per_epoch:
        return TrainPlan(sources, "resample", cfg.samples_per_epoch, seed)
    if cfg.episode_size:
        return TrainPlan(sources, "episode", cfg.episode_size, seed)
    return TrainPlan(sources, "full", seed=seed)


def plan_from_urls(shard_urls, seed: int = 0) -> TrainPlan:
    """A one-source, full-epoch plan over shard specs (labels from `cls`)."""
    urls = validate_shards(shard_urls)
    return TrainPlan([Source("shards", tar_shards(urls))], "full", seed=seed)
