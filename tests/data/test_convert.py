"""`raykd data convert`: TSV -> img2dataset-style shards through Ray Data, skipped rows reported, resumable."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from raykd.cli import main
from raykd.data.convert import convert
from raykd.data.shards import expand_shard_spec, iter_tar_samples
from raykd.data.synthetic import encode_jpeg

pytestmark = pytest.mark.ray

CAPTIONS = ["a red circle.", "ünïcödé ✓ caption", "  spaces  around\t", 'commas, \'single\' and "double" quotes',
            "日本語のキャプション", "two\nlines", "", "plain"]
BAD = {3: "missing_image", 6: "bad_image", 9: "bad_image"}  # row -> why it is skipped


@pytest.fixture
def table(tmp_path):
    """pairs.tsv with 12 rows (captions cycle through CAPTIONS): row 3's image is missing, row 6's is
    not an image, row 9's is a truncated JPEG, row 10 is a PNG; an extra `url` column rides along."""
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for r in range(12):
        name = f"img{r}.png" if r == 10 else f"img{r}.jpg"
        if r == 10:
            Image.new("RGB", (10, 8), (r, 0, 0)).save(images / name)
        elif r == 6:
            (images / name).write_bytes(b"this is not an image")
        elif r == 9:
            data = encode_jpeg(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
            (images / name).write_bytes(data[: len(data) // 2])
        elif r != 3:
            (images / name).write_bytes(encode_jpeg(np.full((16, 12, 3), 20 * r, np.uint8)))
        rows.append([name, CAPTIONS[r % len(CAPTIONS)], f"http://example.com/{r}"])
    path = tmp_path / "pairs.tsv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["filepath", "title", "url"])
        writer.writerows(rows)
    return path, images


def read_back(out) -> dict[str, dict]:
    return {s["__key__"]: s for url in expand_shard_spec(str(out)) for s in iter_tar_samples(open(url, "rb"), url)}


def test_convert_keeps_good_samples_byte_identical_and_reports_the_rest(ray_local, table, tmp_path):
    path, images = table
    out = tmp_path / "shards"
    totals = convert(str(path), str(images), str(out), shard_size=5, progress=False)
    assert totals == {"shards": 3, "samples": 9, "skipped": 3, "resumed_shards": 0, "written_shards": 3}
    assert sorted(os.listdir(out)) == [
        "00000.tar", "00000_stats.json", "00001.tar", "00001_stats.json", "00002.tar", "00002_stats.json",
        "convert.json", "sizes.json", "skipped.tsv"]
    assert json.loads((out / "sizes.json").read_text()) == {"00000.tar": 4, "00001.tar": 3, "00002.tar": 2}
    samples = read_back(out)
    good = [r for r in range(12) if r not in BAD]
    assert sorted(samples) == [f"{r:09d}" for r in good]
    for r in good:
        sample = samples[f"{r:09d}"]
        assert sample["txt"] == CAPTIONS[r % len(CAPTIONS)].encode("utf-8")
        ext = "png" if r == 10 else "jpg"
        assert sample[ext] == (images / f"img{r}.{ext}").read_bytes()  # the file's own bytes
        meta = json.loads(sample["json"])
        assert meta["caption"] == CAPTIONS[r % len(CAPTIONS)] and meta["url"] == f"http://example.com/{r}"
        assert meta["filepath"] == f"img{r}.{ext}" and meta["status"] == "success" and meta["key"] == f"{r:09d}"
    assert (meta["width"], meta["height"]) == (12, 16)
    with open(out / "skipped.tsv", newline="", encoding="utf-8") as f:
        skipped = list(csv.DictReader(f, delimiter="\t"))
    assert {int(x["row"]): x["reason"] for x in skipped} == BAD
    assert all(x["image"] == f"img{x['row']}.jpg" and x["error"] for x in skipped)


def test_rerun_resumes_and_other_settings_are_refused(ray_local, table, tmp_path, capsys):
    path, images = table
    out = tmp_path / "shards"
    args = ["data", "convert", "--input", str(path), "--images-dir", str(images), "--out", str(out),
            "--shard-size", "5", "--sep", "\\t"]
    assert main(args) == 0
    assert "9 samples in 3 shards, 3 rows skipped" in capsys.readouterr().out
    kept = {name: os.stat(out / name).st_mtime_ns for name in ("00000.tar", "00002.tar")}
    os.remove(out / "00001_stats.json")  # as if the run had died while writing shard 1
    (out / "00001.tar").write_bytes(b"half a tar")
    assert main(args) == 0
    assert "1 shards written, 2 kept" in capsys.readouterr().out
    assert {name: os.stat(out / name).st_mtime_ns for name in kept} == kept
    assert len(read_back(out)) == 9
    assert main(args[:-4] + ["--shard-size", "4"]) == 2
    assert "shard_size" in capsys.readouterr().err
    assert main(args[:-2] + ["--caption-key", "caption"]) == 2
    assert "--caption-key 'caption' is not a column" in capsys.readouterr().err
