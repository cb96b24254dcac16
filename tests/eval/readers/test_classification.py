import numpy as np
import pytest
from PIL import Image

from raykd.eval.readers import read_image_folder, read_npz_split


def test_image_folder(tmp_path):
    for cls, n in (("dog", 2), ("cat", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("RGB", (4, 4)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    paths, labels, classes = read_image_folder(tmp_path)
    assert classes == ["cat", "dog"]
    assert [p.split("/")[-2] for p in paths] == ["cat", "dog", "dog"]
    np.testing.assert_array_equal(labels, [0, 1, 1])


def test_npz_split(tmp_path):
    np.savez(tmp_path / "test.npz", images=np.zeros((3, 4, 4, 3), np.uint8), labels=np.array([0, 1, 1]))
    images, labels = read_npz_split(tmp_path / "test.npz")
    assert images.shape == (3, 4, 4, 3) and labels.dtype == np.int64
    with pytest.raises(FileNotFoundError, match="train.npz"):
        read_npz_split(tmp_path / "train.npz")
