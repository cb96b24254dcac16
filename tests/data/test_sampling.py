"""Epoch plans: full epochs, resampled virtual epochs, episodes, weights and truncation (no Ray)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from raykd.data.sampling import TrainPlan, apportion, truncate, unit_positions
from raykd.data.sources import Shard, Source


def sources(*shard_sizes: list[int], weights=None) -> list[Source]:
    """Sources "a", "b", ... with tar shards named <source><shard> of the given sizes."""
    out = []
    for i, sizes in enumerate(shard_sizes):
        name = "abcdef"[i]
        out.append(Source(name, [Shard(f"{name}{j}", n) for j, n in enumerate(sizes)],
                          weight=None if weights is None else weights[i]))
    return out


def drawn(units, sizes: dict | None = None) -> Counter:
    """(shard url, sample index) -> times drawn; `sizes` {url: n} for units that read a whole shard."""
    counts = Counter()
    for unit in units:
        positions = unit_positions(unit)
        counts.update((unit["url"], int(i)) for i in (range(sizes[unit["url"]]) if positions is None else positions))
    return counts


def n_read(unit) -> int:
    return len(unit_positions(unit))


def test_apportion_is_exact_and_proportional():
    assert apportion(10, [0.7, 0.3]) == [7, 3]
    assert apportion(7, [1, 1, 1]) == [3, 2, 2]
    assert sum(apportion(1001, [3, 5, 11])) == 1001


def test_full_epoch_reads_every_sample_once_and_shuffles_per_epoch():
    plan = TrainPlan(sources([10, 10, 5], [7]), "full", seed=1)
    assert plan.epoch_size == 32
    plain = plan.units(0)
    assert [u["url"] for u in plain] == ["a0", "a1", "a2", "b0"] and all(u["order"] is None for u in plain)
    first, second = plan.units(0, shuffle=True), plan.units(1, shuffle=True)
    for units in (first, second):
        assert set(drawn(units).values()) == {1} and len(drawn(units)) == 32
    assert [(u["url"], list(unit_positions(u))) for u in first] != [(u["url"], list(unit_positions(u))) for u in second]
    assert plan.units(0, shuffle=True) == first  # a function of (seed, epoch)


def test_resampled_virtual_epochs_have_the_requested_size_and_differ():
    plan = TrainPlan(sources([100] * 5), "resample", 230, seed=0)
    sizes = [sum(n_read(u) for u in plan.units(e)) for e in range(4)]
    assert sizes == [230] * 4
    assert drawn(plan.units(0)) != drawn(plan.units(1))
    assert drawn(plan.units(2)) == drawn(TrainPlan(sources([100] * 5), "resample", 230, seed=0).units(2))


def test_resampling_is_with_replacement_and_uniform_over_samples():
    plan = TrainPlan(sources([4, 36]), "resample", 400, seed=0)  # shards of very different sizes
    counts = Counter()
    for e in range(50):
        for (url, i), n in drawn(plan.units(e)).items():
            counts[url] += n
    # a sample is equally likely wherever it is: shard a0 holds 10% of the samples
    assert counts["a0"] / (counts["a0"] + counts["a1"]) == pytest.approx(0.1, abs=0.02)
    assert max(drawn(TrainPlan(sources([5]), "resample", 50, seed=0).units(0)).values()) > 1


def test_weights_set_the_sampled_proportions():
    srcs = sources([50] * 4, [20], weights=[0.7, 0.3])  # b is 10x smaller but gets 30%
    for mode in ("resample", "episode"):
        plan = TrainPlan(srcs, mode, 1000, seed=0)
        per_source = Counter()
        for unit in plan.units(0):
            per_source[unit["source"]] += n_read(unit)
        assert per_source == {0: 700, 1: 300}
    unweighted = TrainPlan(sources([50] * 4, [20]), "resample", 1000, seed=0)
    assert sum(n_read(u) for u in unweighted.units(0) if u["source"] == 1) == 91  # 1000 * 20 / 220


def test_episodes_are_fresh_samples_that_cover_the_data_set():
    plan = TrainPlan(sources([10] * 6, [5] * 3), "episode", 25, seed=3)  # 75 samples: 3 episodes per pass
    episodes = [drawn(plan.units(e)) for e in range(6)]
    assert all(sum(ep.values()) == 25 and set(ep.values()) == {1} for ep in episodes)
    first_pass = episodes[0] + episodes[1] + episodes[2]
    assert len(first_pass) == 75 and set(first_pass.values()) == {1}  # every sample exactly once
    second_pass = episodes[3] + episodes[4] + episodes[5]
    assert len(second_pass) == 75 and set(second_pass.values()) == {1}
    assert episodes[0] != episodes[3]  # a new pass is a new permutation
    # not the first rows: episode 0 takes random shards (in random order) from all over each source
    firsts = [frozenset(url for url, _ in drawn(TrainPlan(plan.sources, "episode", 25, seed).units(0)))
              for seed in range(6)]
    assert len(set(firsts)) > 3 and {"a0", "a1", "b0"} not in firsts[:1]
    # an episode larger than the data set wraps into the next pass
    big = TrainPlan(sources([4, 4]), "episode", 12, seed=0)
    assert sorted(Counter(drawn(big.units(0)).values()).items()) == [(1, 4), (2, 4)]


def test_truncation_keeps_each_sources_first_samples_in_proportion():
    srcs = truncate(sources([10, 10, 10], [5, 5]), 16)  # 30 : 10 -> 12 : 4
    assert [[(s.url, s.size, s.limit) for s in src.shards] for src in srcs] == [
        [("a0", 10, None), ("a1", 2, 2)], [("b0", 4, 4)]]
    assert TrainPlan(srcs, "full").epoch_size == 16
    assert truncate(srcs, 0) is srcs and truncate(srcs, 100) is srcs
    records = Source("r", [Shard("r#0", 4, records=tuple((f"img{i}", "c", -1, str(i)) for i in range(4)))])
    assert truncate([records], 3)[0].shards[0].records == records.shards[0].records[:3]


def test_record_units_ship_only_their_records():
    recs = tuple((f"img{i}", f"caption {i}", -1, str(i)) for i in range(10))
    plan = TrainPlan([Source("coco", [Shard("c.json#0", 10, records=recs)])], "resample", 4, seed=0)
    (unit,) = plan.units(0)
    assert unit["order"] is None and len(unit["records"]) == 4 and set(unit["records"]) <= set(recs)
    assert isinstance(unit["seed"], int) and np.iinfo(np.int32).max >= unit["seed"] >= 0
