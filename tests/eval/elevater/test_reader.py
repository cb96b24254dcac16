"""The ELEVATER layout reader on small data sets written by the tests in ELEVATER's exact layout."""
import numpy as np
import pytest

from raykd.eval.elevater import get_dataset
from raykd.eval.elevater._registry import ElevaterDataset, SplitFiles
from raykd.eval.elevater.reader import (ZipImages, check_files, load_dataset, read_iris_index, resolve_classnames)

from .layout import COLOURS, VOC_NAMES, image_bytes, write_hateful_memes, write_lines, write_mnist, write_voc, write_zip


def test_multi_class_iris_layout(tmp_path):
    folder = write_mnist(tmp_path)
    data = load_dataset(tmp_path, get_dataset("mnist"))
    assert (len(data.train), len(data.test)) == (30, 20)
    assert data.train.labels[:3] == [[0], [1], [2]] and data.test.targets.dtype == np.int64
    np.testing.assert_array_equal(data.test.targets, np.arange(20) % 10)
    assert data.classnames == [str(d) for d in range(10)] and data.classnames_source == "registry"
    assert data.train.images.paths[0] == "train.zip@train/00000.png"
    assert data.test.images.folder == folder
    # grayscale PNGs come back as RGB uint8 [H, W, 3] straight from val.zip
    img = data.test.images[1]
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8 and (img[..., 0] == img[..., 2]).all()
    assert len(data.test.images[2:5]) == 3 and len(data.test.images[[0, 3]]) == 2


def test_multi_label_iris_layout_with_two_indexes_in_one_zip(tmp_path):
    _, labels = write_voc(tmp_path)
    data = load_dataset(tmp_path, get_dataset("voc-2007-classification"), ("train", "val", "test"))
    assert data.splits["train"].labels == labels["train_ic.txt"]
    assert data.splits["val"].labels == labels["val_ic.txt"]
    targets = data.test.targets
    assert targets.shape == (30, 20) and targets.dtype == np.float32
    for row, ids in zip(targets, labels["test_ic.txt"]):
        assert set(np.flatnonzero(row)) == set(ids)
    assert targets[-1].sum() == 0  # the unlabelled (negative) image
    # the val index reads from train.zip too
    assert data.splits["val"].images.paths[0].startswith("train.zip@JPEGImages/")
    assert data.splits["val"].images[0].shape == (8, 8, 3)
    assert data.classnames == VOC_NAMES


def test_several_zips_in_one_split(tmp_path):
    spec = ElevaterDataset("two-zips", "classification/two_zips_20240101", 2, "accuracy", ("a {}.",),
                           train=SplitFiles("train.txt", ("part1.zip", "part2.zip")),
                           test=SplitFiles("test.txt", ("part2.zip",)))
    folder = tmp_path / spec.root_folder
    write_lines(folder / "labels.txt", ["cat", "dog"])
    write_zip(folder / "part1.zip", {"a/0.png": image_bytes(COLOURS[0])})
    write_zip(folder / "part2.zip", {"b/0.png": image_bytes(COLOURS[1]), "b/1.png": image_bytes(COLOURS[2])})
    write_lines(folder / "train.txt", ["part1.zip@a/0.png 0", "part2.zip@b/0.png 1"])
    write_lines(folder / "test.txt", ["part2.zip@b/1.png 1"])
    data = load_dataset(tmp_path, spec)
    assert [tuple(img[0, 0]) for img in data.train.images[:]] == [COLOURS[0], COLOURS[1]]
    assert data.classnames == ["cat", "dog"] and data.classnames_source == "labels.txt"
    assert set(data.train.images._zips) == {"part1.zip", "part2.zip"}


def test_coco_layout(tmp_path):
    write_hateful_memes(tmp_path)
    data = load_dataset(tmp_path, get_dataset("hateful-memes"))
    assert (len(data.train), len(data.test)) == (12, 8)
    # images ordered by id (written in reverse), zip_file prefixed or already inside file_name
    assert data.train.images.paths[0] == "img.zip@img/train0011.png"
    assert data.test.images.paths[0] == "img.zip@img/test0007.png"
    np.testing.assert_array_equal(data.train.targets, [(11 - i) % 2 for i in range(12)])
    assert tuple(data.train.images[0][0, 0]) == COLOURS[1]
    assert data.classnames == ["meme", "hatespeech meme"]  # the registry's prompt names


@pytest.mark.parametrize("text, problem", [
    ('{"images": [], "annotations": []}', "missing or unknown 'categories'"),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "category_id": 1}],'
     ' "categories": [{"id": 1, "name": "cat"}]}', "missing or unknown 2"),
    ('{"images": [', "not valid JSON"),
])
def test_malformed_coco_index_names_the_file(tmp_path, text, problem):
    from raykd.eval.elevater.reader import read_coco_index

    (tmp_path / "test.json").write_text(text)
    with pytest.raises(ValueError, match=f"{tmp_path / 'test.json'}: .*{problem}"):
        read_coco_index(tmp_path / "test.json")


def test_missing_files_are_named(tmp_path):
    folder = write_mnist(tmp_path)
    (folder / "val.zip").unlink()
    (folder / "train.txt").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete") as err:
        check_files(tmp_path, get_dataset("mnist"))
    assert str(folder / "val.zip") in str(err.value) and str(folder / "train.txt") in str(err.value)
    with pytest.raises(FileNotFoundError, match="val.zip"):
        load_dataset(tmp_path, get_dataset("mnist"), ("test",))
    with pytest.raises(FileNotFoundError, match="'dtd' not found: missing .*dtd_20211007/labels.txt"):
        check_files(tmp_path, get_dataset("dtd"))


def test_missing_zip_member_is_named(tmp_path):
    folder = write_mnist(tmp_path)
    images = ZipImages(folder, ["train.zip@train/99999.png"])
    with pytest.raises(FileNotFoundError, match="'train/99999.png' not found in .*train.zip"):
        images[0]


def test_label_map_checks(tmp_path):
    folder = write_mnist(tmp_path)
    write_lines(folder / "labels.txt", [str(d) for d in range(9)])
    with pytest.raises(ValueError, match="label map has 9 classes, ELEVATER's manifest says 10"):
        load_dataset(tmp_path, get_dataset("mnist"))
    cifar = get_dataset("cifar-10")
    shuffled = list(cifar.classnames[::-1])
    with pytest.raises(ValueError, match="another order"):
        resolve_classnames(cifar, shuffled)
    names, source = resolve_classnames(get_dataset("food-101"), [f"dish_{i}_x" for i in range(101)])
    assert names[0] == "apple pie" and source == "registry"  # the toolkit's class_map, never labels.txt
    names, source = resolve_classnames(get_dataset("shapes"),
                                       [f"shape_{i}" for i in range(get_dataset("shapes").num_classes)])
    assert names[0] == "shape 0" and source == "labels.txt"  # a set without registry names: underscores to spaces


def test_bad_index_lines(tmp_path):
    folder = write_mnist(tmp_path)
    write_lines(folder / "train.txt", ["train.zip@train/00000.png 12"])
    with pytest.raises(ValueError, match="outside 0..9"):
        load_dataset(tmp_path, get_dataset("mnist"))
    write_lines(folder / "train.txt", ["train.zip@train/00000.png 1,2"])
    with pytest.raises(ValueError, match="multi-class data set 'mnist' has labels"):
        load_dataset(tmp_path, get_dataset("mnist"))
    write_lines(folder / "train.txt", ["train.zip@train/00000.png x"])
    with pytest.raises(ValueError, match="train.txt:1: bad label"):
        read_iris_index(folder / "train.txt")


def test_zip_images_pickle_without_handles(tmp_path):
    import pickle

    folder = write_mnist(tmp_path)
    images = load_dataset(tmp_path, get_dataset("mnist"), ("test",)).test.images
    images[0]
    clone = pickle.loads(pickle.dumps(images))
    assert clone._zips == {} and clone.paths == images.paths
    np.testing.assert_array_equal(clone[3], images[3])
    assert folder == clone.folder
