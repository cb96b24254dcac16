"""Shard writing/reading round trip and shard spec expansion."""
from __future__ import annotations

import json

import pytest

from raykd.data.shards import expand_shard_spec, iter_tar_samples, validate_shards, write_shards

from .conftest import make_sample


def test_round_trip_is_byte_identical(tmp_path):
    captions = ["a red circle.", "ünïcödé ✓ caption", "  spaces  and\ttabs ", "日本語のキャプション"]
    samples = [make_sample(i, c) for i, c in enumerate(captions)]
    sizes = write_shards(samples, tmp_path, shard_size=3, prefix="part")
    assert sizes == {"part-000000.tar": 3, "part-000001.tar": 1}
    assert json.loads((tmp_path / "sizes.json").read_text()) == sizes
    read = [s for url in expand_shard_spec(str(tmp_path)) for s in iter_tar_samples(open(url, "rb"), url)]
    assert [s["txt"] for s in read] == [c.encode("utf-8") for c in captions]
    assert [s["jpg"] for s in read] == [s["jpg"] for s in samples]
    assert [s["__key__"] for s in read] == [s["__key__"] for s in samples]
    assert [int(s["cls"]) for s in read] == [0, 1, 2, 3]


def test_no_samples_leaves_no_tar(tmp_path):
    assert write_shards([], tmp_path) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sizes.json"]


@pytest.fixture
def five_shards(tmp_path):
    write_shards([make_sample(i, "x") for i in range(5)], tmp_path, shard_size=1)
    return tmp_path


def test_brace_pattern_directory_glob_and_file_url(five_shards):
    names = [str(five_shards / f"shard-{i:06d}.tar") for i in range(5)]
    assert expand_shard_spec(str(five_shards / "shard-{000000..000004}.tar")) == names
    assert expand_shard_spec(str(five_shards / "shard-{000001..000002}.tar")) == names[1:3]
    assert expand_shard_spec(str(five_shards)) == names
    assert expand_shard_spec(str(five_shards / "*.tar")) == names
    assert expand_shard_spec(f"file://{five_shards}/shard-000003.tar") == [names[3]]
    assert expand_shard_spec([names[4], names[0]]) == [names[4], names[0]]


def test_remote_urls_pass_through():
    spec = "s3://bucket/train/shard-{000000..000002}.tar"
    assert expand_shard_spec(spec) == [f"s3://bucket/train/shard-00000{i}.tar" for i in range(3)]
    assert expand_shard_spec(["gs://b/x.tar", "https://h/y.tar"]) == ["gs://b/x.tar", "https://h/y.tar"]


def test_missing_and_empty_paths_fail_clearly(five_shards, tmp_path_factory):
    missing = str(five_shards / "shard-000009.tar")
    with pytest.raises(FileNotFoundError, match="shard-000005.tar"):  # the first missing one
        expand_shard_spec(str(five_shards / "shard-{000003..000009}.tar"))
    with pytest.raises(FileNotFoundError, match=missing):
        validate_shards([missing])
    empty_dir = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="contains no"):
        expand_shard_spec(str(empty_dir))
    with pytest.raises(FileNotFoundError, match="no shards match"):
        expand_shard_spec(str(empty_dir / "*.tar"))
    with pytest.raises(FileNotFoundError, match="no shards"):
        expand_shard_spec([])
    (empty_dir / "zero.tar").write_bytes(b"")
    with pytest.raises(ValueError, match="zero.tar.*empty"):
        validate_shards(str(empty_dir))


def test_csv_to_shards(tmp_path):
    from PIL import Image

    from raykd.data.shards import csv_to_shards

    (tmp_path / "img").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "img" / f"{i}.jpeg")
    (tmp_path / "pairs.tsv").write_text("filepath\ttitle\tlabel\n" + "".join(
        f"img/{i}.jpeg\tpicture {i}, with a comma\t{i}\n" for i in range(3)))
    sizes = csv_to_shards(tmp_path / "pairs.tsv", tmp_path / "out", label_col="label", shard_size=2)
    assert sizes == {"shard-000000.tar": 2, "shard-000001.tar": 1}
    read = [s for url in expand_shard_spec(str(tmp_path / "out")) for s in iter_tar_samples(open(url, "rb"), url)]
    assert [s["txt"] for s in read] == [f"picture {i}, with a comma".encode() for i in range(3)]
    assert read[1]["jpg"] == (tmp_path / "img" / "1.jpeg").read_bytes() and read[2]["cls"] == b"2"
    with pytest.raises(KeyError, match="caption"):
        csv_to_shards(tmp_path / "pairs.tsv", tmp_path / "x", caption_col="caption")


def test_empty_shard_files_are_left_out_and_counted_under_skip(tmp_path):
    from raykd.data.shards import usable_shards

    write_shards([{"__key__": f"{i}", "txt": "a caption", "cls": "0"} for i in range(3)], tmp_path, shard_size=2)
    (tmp_path / "shard-000009.tar").write_bytes(b"")
    empty = str(tmp_path / "shard-000009.tar")
    urls, skipped = usable_shards(str(tmp_path), "skip")
    assert len(urls) == 2 and empty not in urls and skipped == {empty: {"empty_shard": 1}}
    with pytest.raises(ValueError, match="shard-000009.tar' is an empty file"):
        usable_shards(str(tmp_path), "raise")
    only_empty = tmp_path / "only"
    only_empty.mkdir()
    (only_empty / "shard-000000.tar").write_bytes(b"")
    with pytest.raises(ValueError, match="every shard of .* is an empty file"):
        usable_shards(str(only_empty), "skip")
