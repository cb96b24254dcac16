"""Training sources from config: shard specs and URLs, sizes, COCO, classification as prompted captions (no Ray)."""
from __future__ import annotations

import json
import shutil

import fsspec
import pytest

from raykd.config.schema import DataConfig
from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.pipeline import iterate_shards_torch
from raykd.data.reader import unit_samples
from raykd.data.samples import ShardProcessor
from raykd.data.sampling import plan_from_config
from raykd.data.shards import shard_sizes, write_shards
from raykd.specs import ImageSpec

from .conftest import good_samples

SPEC = ImageSpec(16)


def processor(on_error="skip") -> ShardProcessor:
    return ShardProcessor(SPEC, HashTokenizer(length=8), "none", on_error)


def read_all(plan, epoch=0, proc=None) -> list[dict]:
    """Every raw sample of an epoch, in plan order, captioned and labelled as training sees them."""
    proc = proc or processor()
    return [s for unit in plan.units(epoch) for s in unit_samples(unit, plan.sources[unit["source"]].labelling(), proc)]


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    """Shard sets a/ (3 x 10 samples, keys s00000..) and b/ (2 x 5, s00100..)."""
    root = tmp_path_factory.mktemp("sets")
    write_shards(good_samples(0, 30), root / "a", shard_size=10)
    write_shards(good_samples(100, 10), root / "b", shard_size=5)
    return root


def test_brace_patterns_folders_and_file_urls(two_sets):
    cfg = DataConfig(sources=[str(two_sets / "a/shard-{000000..000001}.tar"),
                              {"shards": f"file://{two_sets}/b/"}, {"shards": [str(two_sets / "a/*2.tar")]}])
    plan = plan_from_config(cfg)
    assert plan.epoch_size == 20 + 10 + 10 and len(plan.shard_urls) == 5
    keys = [s["__key__"] for s in read_all(plan)]
    assert keys == [f"s{i:05d}" for i in [*range(20), *range(100, 110), *range(20, 30)]]
    assert len(read_all(plan_from_config(DataConfig(train_shards=[f"file://{two_sets}/a/shard-000001.tar"])))) == 10


def test_sizes_from_sizes_json_img2dataset_stats_or_counting(tmp_path, two_sets):
    shutil.copytree(two_sets / "a", tmp_path / "a")
    urls = [str(tmp_path / "a" / f"shard-00000{i}.tar") for i in range(3)]
    (tmp_path / "a" / "sizes.json").write_text(json.dumps({"shard-000000.tar": 7}))  # stale on purpose
    (tmp_path / "a" / "shard-000001_stats.json").write_text(json.dumps({"successes": 9}))
    assert shard_sizes(urls) == [7, 9, 10]  # sizes.json, then _stats.json, then counted from the tar


def test_fsspec_urls_expand_size_and_read():
    fs = fsspec.filesystem("memory")
    names = write_shards(good_samples(0, 8), "/tmp/raykd-mem-src", shard_size=4)
    for name in [*names, "sizes.json"]:
        fs.pipe(f"/bucket/shards/{name}", open(f"/tmp/raykd-mem-src/{name}", "rb").read())
    shutil.rmtree("/tmp/raykd-mem-src")
    for spec in ["memory://bucket/shards/", "memory://bucket/shards/shard-{000000..000001}.tar"]:
        plan = plan_from_config(DataConfig(sources=[{"shards": spec}]))
        assert plan.epoch_size == 8 and all(u.startswith("memory://") for u in plan.shard_urls)
        assert [s["__key__"] for s in read_all(plan)] == [f"s{i:05d}" for i in range(8)]
    with pytest.raises(ValueError, match=r"data.sources\[0\]: no sample count for shard 'memory://bucket/x/y.tar'"):
        plan_from_config(DataConfig(sources=["memory://bucket/x/y.tar"]))


def test_coco_captions_are_samples_and_missing_images_are_counted(coco_dir):
    captions, images = coco_dir
    plan = plan_from_config(DataConfig(sources=[{"coco": captions, "images": images}]))
    assert plan.epoch_size == 13
    proc = processor()
    samples = read_all(plan, proc=proc)
    assert [s["txt"] for s in samples] == [f"image {i} caption {c}" for i in range(6) for c in range(2)]
    assert [s["__key__"] for s in samples][:2] == ["100", "101"] and "cls" not in samples[0]
    assert samples[2]["jpg"] == open(f"{images}/{1:012d}.jpg", "rb").read()
    assert proc.pop_skips() == {f"{images}/gone.jpg": {"missing_image": 1}}


def test_classification_as_prompted_captions_with_joint_labels(shapes_dir, image_folder, two_sets):
    cfg = DataConfig(sources=[{"classification": "shapes"}, {"shards": str(two_sets / "b")},
                              {"classification": str(image_folder), "templates": ["a drawing of a {}."]}],
                     builtin_root=str(shapes_dir.parent), builtin_train_size=256)
    plan = plan_from_config(cfg)
    shapes, pairs, folder = plan.sources
    assert (shapes.label_offset, len(shapes.classnames), folder.label_offset) == (0, 16, 16)
    assert folder.classnames == ("cat", "dog") and pairs.label_mode == "none"
    by_source = {}
    for unit in plan.units(0):
        samples = unit_samples(unit, plan.sources[unit["source"]].labelling(), processor())
        by_source.setdefault(unit["source"], []).extend(samples)
    for s in by_source[0]:
        name = shapes.classnames[int(s["cls"])]
        assert s["txt"] in {t.format(name) for t in shapes.templates}, s["txt"]
    assert len({s["txt"] for s in by_source[0]}) > 16  # random templates, not one caption per class
    assert all("cls" not in s for s in by_source[1])  # image-text pairs: label -1
    assert sorted((s["txt"], s["cls"]) for s in by_source[2]) == [
        ("a drawing of a cat.", "16")] * 3 + [("a drawing of a dog.", "17")] * 3
    labels = set()
    for batch in iterate_shards_torch(plan, SPEC, HashTokenizer(length=8), batch_size=64):
        labels |= set(batch["label"].tolist())
    assert -1 in labels and {16, 17} <= labels and max(labels) == 17


def test_legacy_keys_keep_shard_labels(two_sets, shapes_dir):
    plan = plan_from_config(DataConfig(train_shards=[str(two_sets / "b")]))
    assert [int(s["cls"]) for s in read_all(plan)] == list(range(100, 110))
    builtin = plan_from_config(DataConfig(builtin="shapes", builtin_root=str(shapes_dir.parent),
                                          builtin_train_size=256))
    assert builtin.epoch_size == 256 and builtin.sources[0].label_mode == "cls"


def test_errors_name_the_source(tmp_path, two_sets):
    with pytest.raises(FileNotFoundError, match=r"data.sources\[1\]: .*nowhere"):
        plan_from_config(DataConfig(sources=[str(two_sets / "a"), {"shards": str(tmp_path / "nowhere/{0..3}.tar")}]))
    with pytest.raises(FileNotFoundError, match=r"data.sources\[0\]: .*not-a-set"):
        plan_from_config(DataConfig(sources=[{"classification": "not-a-set"}]))
    with pytest.raises(ValueError, match="no training data"):
        plan_from_config(DataConfig(builtin=""))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match=r"data.sources\[0\]: .*not a COCO captions file"):
        plan_from_config(DataConfig(sources=[{"coco": str(tmp_path / "bad.json"), "images": str(tmp_path)}]))
