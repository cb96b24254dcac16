"""Feature cache storage and lookup: content keys, lookup and misses, the data fingerprint, config checks."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from raykd.config import load_config
from raykd.data.feature_cache import CachedTowerFeatures, FeatureCacheMiss, data_fingerprint, input_keys, weights_hash
from raykd.data.sampling import TrainPlan
from raykd.data.sources import Shard, Source
from tests.conftest import REPO


def tokens(rows) -> dict:
    ids = torch.tensor(rows, dtype=torch.int64)
    return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def test_input_keys_follow_the_content_not_the_batch():
    a = input_keys(tokens([[5, 7, 0], [5, 8, 0], [5, 7, 0]]))
    b = input_keys(tokens([[5, 8, 0]]))
    for key in a:
        assert key.dtype == torch.int64 and key.shape == (3,)
    assert a[0][0] == a[0][2] and a[1][0] == a[1][2]  # the same caption, the same key wherever it is
    assert a[0][1] == b[0][0] and a[1][1] == b[1][0]  # ... and in whatever batch
    assert a[0][0] != a[0][1] and a[1][0] != a[1][1]  # one token apart: both hashes differ
    images = torch.zeros(2, 3, 4, 4)
    images[1, 2, 3, 3] = 1e-7  # a tiny pixel difference changes the bits, hence the key
    keys, _ = input_keys(images)
    assert keys[0] != keys[1]


def small_cache(where="cache-dir"):
    rows = [[1, 2, 0], [3, 4, 5], [6, 0, 0]]
    key, check = input_keys(tokens(rows))
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    return CachedTowerFeatures(key.numpy(), check.numpy(), features, where), rows, features


def test_lookup_returns_each_inputs_row_in_batch_order():
    cache, rows, features = small_cache()
    got = cache(tokens([rows[2], rows[0], rows[2], rows[1]]))
    torch.testing.assert_close(got, torch.as_tensor(features[[2, 0, 2, 1]]))


def test_under_bf16_the_features_are_kept_in_bf16():
    """Half the memory, and what the locked tower gives under bf16 autocast; the lookup is unchanged."""
    cache, rows, features = small_cache()
    cache.to("cpu", torch.bfloat16)
    got = cache(tokens([rows[1], rows[0]]))
    assert got.dtype == torch.bfloat16 and torch.equal(got, torch.as_tensor(features[[1, 0]]).bfloat16())
    cache.raise_if_missed()


def test_an_input_not_in_the_cache_fails_at_the_check_naming_the_cache():
    cache, rows, _ = small_cache("/caches/text-abc")
    cache(tokens([rows[0], rows[1]]))
    cache.raise_if_missed()  # every input was there
    cache(tokens([rows[0], [9, 9, 9]]))  # counted on the device: no host sync in the step
    cache(tokens([rows[1], rows[2]]))
    with pytest.raises(FeatureCacheMiss, match=r"1 of 4 inputs looked up since the last report are not in the "
                                               r"feature cache /caches/text-abc"):
        cache.raise_if_missed()
    cache.raise_if_missed()  # counted from the last check on


def test_data_fingerprint_changes_with_a_rewritten_shard(tmp_path):
    shard = tmp_path / "shard-0.tar"
    shard.write_bytes(b"x" * 10)
    plan = TrainPlan([Source("data.train_shards", [Shard(str(shard), 3)])])
    before = data_fingerprint(plan)
    assert data_fingerprint(plan) == before
    os.utime(shard, ns=(1, 1))
    assert data_fingerprint(plan) != before
    shard.write_bytes(b"x" * 11)
    assert data_fingerprint(TrainPlan([Source("data.train_shards", [Shard(str(shard), 3, limit=2)])])) != before


def test_weights_hash_sees_one_changed_weight():
    module = torch.nn.Linear(3, 2)
    before = weights_hash(module)
    with torch.no_grad():
        module.bias[0] += 1e-6
    assert weights_hash(module) != before


def recipe(*overrides):
    return load_config(REPO / "recipes/quickstart.yaml", list(overrides))


def test_only_a_locked_tower_can_be_cached():
    with pytest.raises(ValueError, match=r"model.text.cache_features: only a locked tower"):
        recipe("model.text.cache_features=true")
    assert recipe("model.text.cache_features=true", "model.text.lock=true").model.text.cache_features


def test_an_augmented_image_tower_cannot_be_cached():
    with pytest.raises(ValueError, match=r"model.image.cache_features: .*data.augment: light: random crops"):
        recipe("model.image.cache_features=true", "model.image.lock=true", "data.augment=light")
    recipe("model.image.cache_features=true", "model.image.lock=true", "data.augment=none")


def test_parts_round_trip_through_parquet_without_ray(tmp_path):
    import pyarrow.parquet as pq

    from raykd.data.feature_cache import PARTS, feature_table, manifest, write_manifest

    _, rows, features = small_cache()
    key, check = input_keys(tokens(rows))
    (tmp_path / PARTS).mkdir()
    pq.write_table(feature_table(key.numpy()[:2], check.numpy()[:2], features[:2]), tmp_path / PARTS / "a.parquet")
    pq.write_table(feature_table(key.numpy()[2:], check.numpy()[2:], features[2:]), tmp_path / PARTS / "b.parquet")
    write_manifest(str(tmp_path), manifest("text", {}, "w", "d"))
    loaded = CachedTowerFeatures.load(str(tmp_path))
    torch.testing.assert_close(loaded(tokens(rows[::-1])), torch.as_tensor(features[::-1].copy()))
