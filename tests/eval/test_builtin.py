"""The built-in data sets' evaluation view: layout, agreement with the shards, reuse, staleness, data roots."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from raykd.data.builtin import ensure_builtin, load_labelled_split, shard_paths
from raykd.data.shards import iter_tar_samples
from raykd.eval import builtin as eb
from raykd.eval import datasets as ds
from raykd.eval.engine import evaluate

from .fakes import FakeDualEncoder


@pytest.fixture(scope="module")
def view_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("builtin-views")
    for name in ("digits", "shapes"):
        eb.ensure_view(name, root)
    return root


def test_layout_is_found_by_every_image_kind(view_root):
    assert ds.find_datasets("classification", view_root) == ["digits", "shapes"]
    assert set(ds.find_datasets("captions", view_root)) == {"digits", "shapes"}
    shapes = ds.load_dataset("classification", view_root, "shapes")
    assert shapes.images.shape == (800, 64, 64, 3) and shapes.images.dtype == np.uint8
    assert shapes.train_images.shape == (eb.EVAL_TRAIN_SIZE, 64, 64, 3)
    assert len(shapes.classnames) == 16 and "{}" in shapes.templates[0]
    assert np.bincount(shapes.labels).min() == np.bincount(shapes.labels).max() == 50  # balanced held-out split
    meta = json.loads((view_root / "classification/shapes/meta.json").read_text())
    assert meta["test_size"] == 800 and meta["train_size"] == eb.EVAL_TRAIN_SIZE


def test_held_out_split_matches_the_shards(view_root, tmp_path):
    """The view's held-out split is the built-in test split: same pixels, labels, captions and prompts."""
    shard_dir = ensure_builtin("digits", tmp_path, train_size=20)  # the test split does not depend on train_size
    images, labels, classnames, templates = load_labelled_split(shard_dir, "test")
    view = ds.load_dataset("classification", view_root, "digits")
    np.testing.assert_array_equal(view.images, images)
    np.testing.assert_array_equal(view.labels, labels)
    assert (view.classnames, view.templates) == (classnames, templates)
    assert view.train_images.shape[0] == 1437  # digits' whole training split (under the cap)
    captions = ds.load_dataset("captions", view_root, "digits")
    assert len(captions.images) == len(captions.captions) == len(labels)
    np.testing.assert_array_equal(captions.caption_image, np.arange(len(labels)))
    with open(shard_paths(shard_dir, "test")[0], "rb") as f:
        first = next(iter_tar_samples(f, url="test"))
    caption = first["txt"].decode() if isinstance(first["txt"], bytes) else first["txt"]
    assert captions.captions[0] == caption
    assert (view_root / "retrieval/digits/test-0000000.jpg").read_bytes() == first["jpg"]


def test_every_image_task_runs_on_the_view(view_root):
    tasks = ["zeroshot", "linear_probe", "knn", "clustering", "retrieval", "feature_analysis"]
    out = evaluate(FakeDualEncoder(dim=8, image_dim=12), tasks, view_root, ["digits"], batch_size=512,
                   task_options={"linear_probe": {"grid": [1.0]}})
    assert "errors" not in out
    assert {k.split("/")[0] for k in out} == set(tasks)
    assert {k.split("/")[1] for k in out} == {"digits"}


def test_second_call_reuses_and_stale_view_is_regenerated(tmp_path, monkeypatch):
    eb.ensure_view("digits", tmp_path)
    meta = tmp_path / "classification/digits/meta.json"
    stamp = meta.stat().st_mtime_ns
    assert eb.ensure_view("digits", tmp_path) == tmp_path and meta.stat().st_mtime_ns == stamp
    (tmp_path / "retrieval/digits.tsv").unlink()  # incomplete: regenerated
    assert not eb.is_current(tmp_path, "digits")
    eb.ensure_view("digits", tmp_path)
    assert eb.is_current(tmp_path, "digits")
    monkeypatch.setattr(eb, "EVAL_VIEW_VERSION", eb.EVAL_VIEW_VERSION + 1)
    assert not eb.is_current(tmp_path, "digits")
    eb.ensure_view("digits", tmp_path)
    assert json.loads(meta.read_text())["eval_view_version"] == eb.EVAL_VIEW_VERSION
    assert not [p for p in tmp_path.rglob(".*")], "temporary or stale copies left behind"


def test_concurrent_callers_agree(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        roots = list(pool.map(lambda _: eb.ensure_view("digits", tmp_path), range(2)))
    assert roots == [tmp_path, tmp_path] and eb.is_current(tmp_path, "digits")
    assert len(list((tmp_path / "retrieval/digits").iterdir())) == 360
    assert not [p for p in tmp_path.rglob(".*")]


def test_prepare_data_root(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(eb, "ensure_view", lambda name, root: written.append((name, root)))
    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path / "cache"))
    default = tmp_path / "cache" / "builtin"
    assert eb.prepare_data_root(None) == default  # no data root: the built-in cache, every set's view
    assert written == [("digits", default), ("shapes", default)]
    written.clear()
    assert eb.prepare_data_root("", builtin_root=tmp_path / "b", names=["digits"]) == tmp_path / "b"
    assert written == [("digits", tmp_path / "b")]
    written.clear()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert eb.prepare_data_root(plain) == plain and written == []  # a user's data root is left alone
    eb.prepare_data_root(plain, names=["shapes"])  # ... unless built-in sets were asked for by name
    assert written == [("shapes", plain)]
    written.clear()
    cache = tmp_path / "cache2"
    (cache / "shapes-train512").mkdir(parents=True)
    (cache / "shapes-train512" / "meta.json").write_text("{}")
    assert eb.is_builtin_cache(cache) and eb.is_builtin_cache(default) and not eb.is_builtin_cache(plain)
    eb.prepare_data_root(cache)  # a built-in cache given as the data root gets the views
    assert written == [("digits", cache), ("shapes", cache)]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        eb.prepare_data_root(tmp_path / "nowhere")


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="valid names: digits, shapes"):
        eb.ensure_view("cifar", tmp_path)
