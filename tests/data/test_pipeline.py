"""The Ray Data training pipeline and the DataLoader path over the same shards."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from raykd.config.schema import DataConfig
from raykd.data.builtin import shard_paths
from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.pipeline import build_from_config, build_train_dataset, iterate_shards_torch, torch_batches
from raykd.data.sampling import plan_from_config
from raykd.data.run_state import DataRunState
from raykd.specs import ImageSpec

SPEC = ImageSpec(16)
TOKENIZE = HashTokenizer(length=8)

pytestmark = pytest.mark.ray


def _collect(batches) -> dict[str, torch.Tensor]:
    batches = list(batches)
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def test_batches_shapes_dtypes_and_every_sample_once(ray_local, clean_shards):
    ds = build_train_dataset(clean_shards, SPEC, TOKENIZE, augment="light", shuffle_seed=None)
    for _ in range(2):  # two epochs
        batches = list(ds.iter_torch_batches(batch_size=7, drop_last=True))
        first = batches[0]
        assert first["image"].shape == (7, 3, 16, 16) and first["image"].dtype == torch.uint8
        assert first["input_ids"].shape == (7, 8) and first["input_ids"].dtype == torch.int64
        assert first["attention_mask"].shape == (7, 8) and first["label"].dtype == torch.int64
        assert len(batches) == 60 // 7
    labels = _collect(ds.iter_torch_batches(batch_size=60))["label"]
    assert sorted(labels.tolist()) == list(range(60))


def test_ray_and_dataloader_paths_give_the_same_tensors(ray_local, clean_shards):
    ds = build_train_dataset(clean_shards, SPEC, TOKENIZE, augment="none")
    ray_rows = _collect(ds.iter_torch_batches(batch_size=10))
    torch_rows = _collect(iterate_shards_torch(clean_shards, SPEC, TOKENIZE, batch_size=10, num_workers=2))
    order_r, order_t = ray_rows["label"].argsort(), torch_rows["label"].argsort()
    for key in ("image", "input_ids", "attention_mask", "label"):
        torch.testing.assert_close(ray_rows[key][order_r], torch_rows[key][order_t])
    # the image is the sample's constant grey level i % 256 (JPEG: give or take a few levels)
    expected = ray_rows["label"][order_r] % 256
    assert (ray_rows["image"][order_r][:, 0, 8, 8].long() - expected).abs().max() <= 2


def test_shuffle_changes_order_not_content(ray_local, clean_shards):
    ds = build_train_dataset(clean_shards, SPEC, TOKENIZE, augment="none", shuffle_seed=1)
    labels = _collect(torch_batches(ds, 10, shuffle_buffer=20, seed=0))["label"].tolist()
    assert sorted(labels) == list(range(60)) and labels != list(range(60))


def test_skip_counts_faults_per_shard_and_reason(ray_local, faulty_shards):
    paths, expected, n_good = faulty_shards
    DataRunState("test-skip").reset()
    ds = build_train_dataset(paths, SPEC, TOKENIZE, on_error="skip", state=DataRunState("test-skip"))
    labels = _collect(ds.iter_torch_batches(batch_size=100))["label"].tolist()
    assert len(labels) == n_good and not {3, 7, 15} & set(labels)
    assert DataRunState("test-skip").skipped() == expected
    ds.materialize()  # a second epoch adds up
    assert DataRunState("test-skip").skipped()[paths[0]] == {"bad_image": 2, "missing_caption": 2}


def test_counts_are_readable_from_a_ray_task(ray_local, faulty_shards):
    DataRunState("test-task").reset()
    build_train_dataset(faulty_shards[0], SPEC, TOKENIZE, state=DataRunState("test-task")).materialize()
    remote_read = ray_local.remote(num_cpus=0)(lambda: DataRunState("test-task").skipped())
    assert ray_local.get(remote_read.remote()) == faulty_shards[1]


@pytest.mark.parametrize("index,key", [(0, "s00003"), (1, "s00014")])
def test_raise_names_shard_and_key(ray_local, faulty_shards, index, key):
    path = faulty_shards[0][index]
    ds = build_train_dataset([path], SPEC, TOKENIZE, on_error="raise")
    with pytest.raises(Exception, match=key) as info:
        ds.materialize()
    assert path in str(info.value)


def test_config_entry_points(ray_local, shapes_dir, tmp_path):
    cfg = DataConfig(builtin="shapes", builtin_root=str(shapes_dir.parent), builtin_train_size=256, augment="clip")
    plan = plan_from_config(cfg)
    assert plan.shard_urls == shard_paths(shapes_dir) and plan.epoch_size == 256
    batch = next(iter(torch_batches(build_from_config(cfg, ImageSpec(64), TOKENIZE, seed=0), 32)))
    assert batch["image"].shape == (32, 3, 64, 64) and batch["label"].min() >= 0
    with pytest.raises(FileNotFoundError, match="data.train_shards: .*nowhere"):
        plan_from_config(DataConfig(train_shards=[str(tmp_path / "nowhere" / "a.tar")]))



def test_weighted_resampled_epochs_through_ray(ray_local, tmp_path):
    from raykd.data.shards import write_shards

    from .conftest import good_samples

    write_shards(good_samples(0, 30), tmp_path / "a", shard_size=10)
    write_shards(good_samples(100, 10), tmp_path / "b", shard_size=5)
    cfg = DataConfig(sources=[{"shards": f"file://{tmp_path}/a/shard-{{000000..000002}}.tar", "weight": 3},
                              {"shards": str(tmp_path / "b"), "weight": 1}], samples_per_epoch=80)
    DataRunState("test-weights").reset()
    ds = build_from_config(cfg, SPEC, TOKENIZE, seed=0, state=DataRunState("test-weights"))
    epochs = [_collect(ds.iter_torch_batches(batch_size=100))["label"].tolist() for _ in range(2)]
    for labels in epochs:  # driver-side passes: epoch 0, then 1
        assert len(labels) == 80 and sum(label >= 100 for label in labels) == 20  # weights 3 : 1
        assert max(Counter(labels).values()) > 1  # with replacement
    assert sorted(epochs[0]) != sorted(epochs[1])  # a fresh draw every epoch


@pytest.mark.parametrize("on_error", ["skip", "raise"])
def test_a_shard_that_disappears_mid_run_is_named(ray_local, tmp_path, on_error):
    from raykd.data.shards import write_shards

    from .conftest import good_samples

    write_shards(good_samples(0, 30), tmp_path, shard_size=10)
    plan = plan_from_config(DataConfig(train_shards=[str(tmp_path)]))
    DataRunState("test-gone").reset()
    ds = build_train_dataset(plan, SPEC, TOKENIZE, on_error=on_error, state=DataRunState("test-gone"))
    assert len(_collect(ds.iter_torch_batches(batch_size=100))["label"]) == 30
    gone = str(tmp_path / "shard-000001.tar")
    (tmp_path / "shard-000001.tar").unlink()
    if on_error == "raise":
        with pytest.raises(Exception, match="missing_shard") as info:
            ds.materialize()
        assert gone in str(info.value)
        return
    labels = _collect(ds.iter_torch_batches(batch_size=100))["label"].tolist()
    assert sorted(labels) == [*range(10), *range(20, 30)]
    assert DataRunState("test-gone").skipped() == {gone: {"missing_shard": 1}}
