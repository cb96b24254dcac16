import numpy as np
import pytest

from raykd.eval import datasets as ds
from raykd.eval.datasets import ClassificationData

from .data_root import EXPECTED_DATASETS, write_data_root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_data_root(tmp_path_factory.mktemp("eval-data"))


def test_every_layout_is_found(root):
    assert {kind: ds.find_datasets(kind, root) for kind in ds.KINDS} == EXPECTED_DATASETS


@pytest.mark.parametrize("kind,name", [(k, n) for k, names in EXPECTED_DATASETS.items() for n in names])
def test_every_found_dataset_loads(root, kind, name):
    assert ds.load_dataset(kind, root, name) is not None


def test_classification_npz_and_folder(root):
    toy = ds.load_dataset("classification", root, "toy")
    assert isinstance(toy, ClassificationData)
    assert toy.images.shape == (18, 8, 8, 3) and toy.train_labels.shape == (36,)
    assert toy.classnames[0] == "class a" and toy.templates == ["a photo of a {}."]
    pets = ds.load_dataset("classification", root, "pets")
    assert pets.classnames == ["cat", "dog"] and len(pets.images) == 12
    np.testing.assert_array_equal(pets.labels, [0] * 6 + [1] * 6)


def test_sts_alternatives_and_claims(root, tmp_path):
    assert ds.claims("sts", tmp_path, "STS16") and not ds.claims("sts", root, "msmarco")
    with pytest.raises(FileNotFoundError, match="STS16-en-test"):
        ds.load_dataset("sts", tmp_path, "STS16")
    with pytest.raises(FileNotFoundError, match="sts-test.csv"):
        ds.load_dataset("sts", tmp_path, "STSBenchmark")
    data = ds.load_dataset("sts", root, "STS12")
    assert list(data.pairs) == ["MSRpar"] and len(data.pairs["MSRpar"].scores) == 4


def test_stsb_dev_and_test_are_two_data_sets(tmp_path):
    folder = tmp_path / ds.STS_DIR / "STSBenchmark"
    folder.mkdir(parents=True)
    for split, n in (("dev", 3), ("test", 2)):
        rows = [f"g\td\t2015\t{i}\t{i}.0\t{split}{i} a\tb\n" for i in range(n)]
        (folder / f"sts-{split}.csv").write_text("".join(rows))
    assert ds.find_datasets("sts", tmp_path) == ["STSBenchmark", "STSBenchmark-dev"]
    dev, test = (ds.load_dataset("sts", tmp_path, n).pairs for n in ("STSBenchmark-dev", "STSBenchmark"))
    assert list(dev) == ["dev"] and dev["dev"].sentences1 == ["dev0 a", "dev1 a", "dev2 a"]
    assert list(test) == ["test"] and test["test"].sentences1 == ["test0 a", "test1 a"]


def test_missing_dataset_names_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="classification/nope"):
        ds.load_dataset("classification", tmp_path, "nope")
    with pytest.raises(FileNotFoundError, match="captions_val2014.json"):
        ds.load_dataset("captions", tmp_path, "mscoco_2014")
    with pytest.raises(FileNotFoundError, match="collection.tsv"):
        ds.load_dataset("passages", tmp_path, "msmarco")
    with pytest.raises(ValueError, match="unknown data kind"):
        ds.find_datasets("audio", tmp_path)
