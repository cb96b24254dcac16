"""Built-in data sets: determinism, concurrency, sizes, balance, layout, load_labelled_split."""
from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from raykd.data.builtin import (builtin_shard_path, builtin_url, ensure_builtin, list_builtin, load_labelled_split,
                                read_lines, shard_paths)
from raykd.data.shards import read_sizes


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name,train_size", [("shapes", 40), ("digits", 50)])
def test_generation_is_byte_identical(tmp_path, name, train_size):
    a = ensure_builtin(name, tmp_path / "a", train_size=train_size)
    b = ensure_builtin(name, tmp_path / "b", train_size=train_size)
    files_a, files_b = _tree_bytes(a), _tree_bytes(b)
    assert any(k.endswith(".tar") for k in files_a)
    assert files_a == files_b


def test_second_call_reuses_directory(tmp_path):
    first = ensure_builtin("digits", tmp_path, train_size=20)
    stamp = (first / "meta.json").stat().st_mtime_ns
    assert ensure_builtin("digits", tmp_path, train_size=20) == first
    assert (first / "meta.json").stat().st_mtime_ns == stamp


def _ensure(root: str, queue) -> None:
    queue.put(str(ensure_builtin("shapes", root, train_size=48)))


def test_concurrent_ensure_from_two_processes(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ensure, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    paths = {queue.get(timeout=5) for _ in procs}
    assert paths == {str(tmp_path / "shapes-train48")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes-train48"]  # no temp dirs left
    assert sum(read_sizes(tmp_path / "shapes-train48" / "train").values()) == 48


def test_unknown_name_lists_valid_ones(tmp_path):
    assert list_builtin() == ["digits", "shapes"]
    with pytest.raises(ValueError, match="digits, shapes"):
        ensure_builtin("mnist", tmp_path)


def test_default_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path))
    assert ensure_builtin("digits", train_size=10) == tmp_path / "builtin" / "digits-train10"


def test_shapes_layout_sizes_and_balance(shapes_dir):
    meta = json.loads((shapes_dir / "meta.json").read_text())
    assert len(meta.pop("digest")) == 64  # sha256 of the shards, see test_builtin_url_*
    assert meta == {"name": "shapes", "num_classes": 16, "image_size": 64, "train_size": 256,
                    "test_size": 800, "version": 2}
    assert sum(read_sizes(shapes_dir / "train").values()) == 256
    classnames = read_lines(shapes_dir / "classnames.txt")
    assert len(classnames) == 16 and classnames[0] == "red circle"
    assert all("{}" in t for t in read_lines(shapes_dir / "templates.txt"))
    images, labels, names, templates = load_labelled_split(shapes_dir, "test")
    assert images.shape == (800, 64, 64, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels, minlength=16).tolist() == [50] * 16
    assert names == classnames and templates[0] == "a photo of a {}."
    _, train_labels, _, _ = load_labelled_split(shapes_dir, "train")
    assert np.bincount(train_labels, minlength=16).tolist() == [16] * 16


def test_shapes_colour_is_visible(shapes_dir):
    """The class colour dominates the pixels that differ most from the background."""
    images, labels, names, _ = load_labelled_split(shapes_dir, "test")
    rgb = {"red": 0, "green": 1, "blue": 2}
    for img, label in zip(images[:64], labels[:64]):
        colour = names[label].split()[0]
        if colour in rgb:
            saturation = img.max(-1).astype(int) - img.min(-1)
            pixels = img[saturation > 100].mean(0)
            assert pixels.argmax() == rgb[colour]


def test_digits_split_and_captions(tmp_path):
    root = ensure_builtin("digits", tmp_path)
    images, labels, names, _ = load_labelled_split(root, "test")
    assert images.shape == (360, 32, 32, 3) and names[3] == "three"
    train_images, _, _, _ = load_labelled_split(root, "train")
    assert len(train_images) == 1437
    assert len(shard_paths(root, "train")) == 3
    with pytest.raises(ValueError, match="too large"):
        ensure_builtin("digits", tmp_path / "x", train_size=5000)


def test_stale_version_is_regenerated(tmp_path):
    path = ensure_builtin("digits", tmp_path, train_size=10)
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "version": 0}))
    assert ensure_builtin("digits", tmp_path, train_size=10) == path
    assert json.loads((path / "meta.json").read_text()) == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-train10"]


def test_builtin_url_is_regenerated_where_it_is_read(tmp_path):
    """A node that has never seen the driver's cache generates the data set into its own and reads the same bytes."""
    driver = ensure_builtin("digits", tmp_path / "driver", train_size=30)
    shard = shard_paths(driver, "train")[0]
    url = builtin_url(driver, shard)
    assert url.startswith("builtin://digits-train30@") and url.endswith("/train/shard-000000.tar")
    node_path = builtin_shard_path(url, root=tmp_path / "node")
    assert node_path == str(tmp_path / "node" / "digits-train30" / "train" / "shard-000000.tar")
    assert Path(node_path).read_bytes() == Path(shard).read_bytes()


def test_builtin_url_with_another_digest_is_refused(tmp_path):
    driver = ensure_builtin("digits", tmp_path, train_size=30)
    url = builtin_url(driver, shard_paths(driver, "train")[0])
    stale = url.replace(url.split("@")[1][:16], "0" * 16)
    with pytest.raises(ValueError, match="has digest .* but the run was planned with 0000000000000000"):
        builtin_shard_path(stale, root=tmp_path)
    with pytest.raises(ValueError, match="is not a built-in data URL"):
        builtin_shard_path("builtin://digits/train/shard-000000.tar", root=tmp_path)
