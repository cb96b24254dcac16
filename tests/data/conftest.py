"""Fixtures of the data tests: a small built-in data set, hand-made shards with faults, a shared Ray."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from raykd.data.builtin import ensure_builtin
from raykd.data.shards import write_shards
from raykd.data.synthetic import encode_jpeg


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """A small `shapes` (256 train samples, one shard; the full 800-sample test split) generated once."""
    return ensure_builtin("shapes", tmp_path_factory.mktemp("builtin"), train_size=256)


def make_sample(i: int, caption: str | None = None, jpg: bytes | None = None, size: int = 24) -> dict:
    """Sample `s{i:05d}` with a constant-colour image of grey level i % 256 and label i."""
    image = np.full((size, size, 3), i % 256, dtype=np.uint8)
    sample = {"__key__": f"s{i:05d}", "jpg": jpg if jpg is not None else encode_jpeg(image), "cls": str(i)}
    if caption is not None:
        sample["txt"] = caption
    return sample


def good_samples(start: int, n: int) -> list[dict]:
    return [make_sample(i, f"caption number {i}") for i in range(start, start + n)]


def truncate_in_sample(path, key: str) -> None:
    """Cut the tar at `path` in the middle of `<key>.jpg`'s data."""
    data = open(path, "rb").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember(f"{key}.jpg")
    open(path, "wb").write(data[: member.offset_data + member.size // 2])


@pytest.fixture(scope="session")
def clean_shards(tmp_path_factory):
    """3 shards of 20 valid samples (keys s00000..s00059, label = index): list of paths."""
    out = tmp_path_factory.mktemp("clean")
    write_shards(good_samples(0, 60), out, shard_size=20)
    return sorted(str(p) for p in out.glob("*.tar"))


@pytest.fixture(scope="session")
def faulty_shards(tmp_path_factory):
    """(paths, expected skips, n good samples): shard 0 has an undecodable jpg (s00003) and a sample
    without caption (s00007); shard 1 is truncated inside s00015.jpg; shard 2 is clean."""
    out = tmp_path_factory.mktemp("faulty")
    samples = good_samples(0, 30)
    samples[3] = make_sample(3, "a broken image", jpg=b"this is not a jpeg")
    samples[7] = make_sample(7, None)
    write_shards(samples, out, shard_size=10)
    paths = sorted(str(p) for p in out.glob("*.tar"))
    truncate_in_sample(paths[1], "s00015")
    expected = {paths[0]: {"bad_image": 1, "missing_caption": 1}, paths[1]: {"corrupt_tar": 1}}
    return paths, expected, 30 - 2 - 5  # s00015..s00019 are lost with the truncation


@pytest.fixture(scope="module")
def ray_local():
    """The shared local Ray instance (not shut down: other modules may use it)."""
    from tests.conftest import start_test_ray

    yield start_test_ray()


def save_jpeg(path, grey: int, size: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(np.full((size, size, 3), grey % 256, dtype=np.uint8)))


@pytest.fixture(scope="session")
def coco_dir(tmp_path_factory):
    """(captions json, images dir): 6 images with 2 captions each (annotation id 100 + 2i + c, caption
    'image i caption c'), plus one annotation (id 999) of an image file that is missing."""
    root = tmp_path_factory.mktemp("coco")
    images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(6)] + [{"id": 6, "file_name": "gone.jpg"}]
    for i in range(6):
        save_jpeg(root / "train2017" / f"{i:012d}.jpg", 40 * i)
    annotations = [{"id": 100 + 2 * i + c, "image_id": i, "caption": f"image {i} caption {c}"}
                   for i in range(6) for c in range(2)] + [{"id": 999, "image_id": 6, "caption": "lost"}]
    path = root / "captions_train2017.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return str(path), str(root / "train2017")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """An ImageFolder tree train/<cat|dog>/<n>.png: 3 images per class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for label, name in enumerate(("cat", "dog")):
        (root / "train" / name).mkdir(parents=True)
        for n in range(3):
            Image.new("RGB", (20, 20), (100 * label, n, 0)).save(root / "train" / name / f"{n}.png")
    return root
