"""The registry: ELEVATER's 20 data sets (and imagenet-1k, the optional 21st) with their ids, metrics, class
names and templates; class names as in the toolkit's ``class_map`` (Elevater_Toolkit_IC
``vision_benchmark/datasets/prompts.py``)."""
import pytest

from raykd.eval.elevater import ElevaterDataset, get_dataset, list_datasets, register_dataset
from raykd.eval.elevater._registry import SplitFiles
from raykd.eval.elevater.catalogue import ELEVATER_20, ELEVATER_21

MEAN_PER_CLASS = {"caltech-101", "fgvc-aircraft-2013b-variants102", "oxford-flower-102", "oxford-iiit-pets"}


def test_the_twenty_elevater_ids():
    assert list_datasets(builtin=False) == list(ELEVATER_21) and len(ELEVATER_20) == 20
    assert ELEVATER_21[-1] == "imagenet-1k" and set(list_datasets(builtin=True)) == {"shapes", "digits"}


@pytest.mark.parametrize("name, count, first, last", [
    ("caltech-101", 102, "accordion", "yin and yang symbol"),
    ("fgvc-aircraft-2013b-variants102", 100, "707-320", "Yak-42"),
    ("food-101", 101, "apple pie", "waffles"),
    ("oxford-flower-102", 102, "pink primrose", "blackberry lily"),
    ("oxford-iiit-pets", 37, "Abyssinian", "yorkshire terrier"),
    ("stanford-cars", 196, "Acura Integra Type R 2001", "Volvo XC90 SUV 2007"),
    ("imagenet-1k", 1000, "tench", "toilet paper"),
])
def test_class_names_typed_in_from_the_toolkits_class_map(name, count, first, last):
    names = get_dataset(name).classnames
    assert (len(names), names[0], names[-1]) == (count, first, last)
    assert get_dataset(name).classnames_source == "registry"


def test_caltech_names_are_the_toolkits_not_labels_txt():
    names = get_dataset("caltech-101").classnames
    assert {"side of a car", "centered face", "snoopy (cartoon beagle)"} <= set(names)


def test_kitti_keeps_the_whole_frame():
    assert get_dataset("kitti-distance").center_crop is False
    assert all(get_dataset(n).center_crop for n in ELEVATER_21 if n != "kitti-distance")


@pytest.mark.parametrize("name", list_datasets())
def test_every_registered_dataset(name):
    spec = get_dataset(name)
    expected = ("11point_mAP" if name == "voc-2007-classification" else "roc_auc" if name == "hateful-memes"
                else "mean-per-class" if name in MEAN_PER_CLASS else "accuracy")
    assert spec.metric == expected
    assert spec.root_folder.startswith("classification/") and all("{}" in t for t in spec.templates)
    assert spec.multilabel == (name == "voc-2007-classification")
    if spec.classnames is not None:
        repeated = 2 if name == "imagenet-1k" else 0  # the toolkit's list has "missile" and "sunglasses" twice
        assert len(spec.classnames) == spec.num_classes and len(set(spec.classnames)) == spec.num_classes - repeated
    assert (spec.classnames_source in ("labels.txt", "labelmap.txt")) == (spec.classnames is None)
    assert (spec.classnames is None) == (spec.builtin is not None)
    assert spec.train.index and spec.test.index and spec.test.zips


def test_manifest_details():
    mnist = get_dataset("mnist")
    assert mnist.root_folder == "classification/mnist_20211008"
    assert mnist.train == SplitFiles("train.txt", ("train.zip",)) and mnist.test == SplitFiles("test.txt", ("val.zip",))
    voc = get_dataset("voc-2007-classification")
    assert voc.val == SplitFiles("val_ic.txt", ("train.zip",)) and voc.test.files == ("test_ic.txt", "test.zip")
    assert get_dataset("hateful-memes").format == "coco" and get_dataset("gtsrb").labelmap == "labelmap.txt"
    assert get_dataset("cifar-100").classnames[:3] == ("chimpanzee", "trout", "skunk")  # ELEVATER's order
    assert get_dataset("patch-camelyon").search_shots == 10000


@pytest.mark.parametrize("alias", "caltech101 cifar10 cifar100 country211 dtd eurosat-clip fer2013 fgvc-aircraft-2013b "
                                  "flower102 food101 gtsrb hateful-memes kitti-distance mnist oxford-iiit-pets "
                                  "patchcamelyon rendered-sst2 resisc45-clip stanfordcar voc2007classification".split())
def test_the_original_codebase_loop_names_resolve(alias):
    assert get_dataset(alias).name in ELEVATER_20


def test_unknown_names_and_conflicts():
    with pytest.raises(ValueError, match=r"unknown ELEVATER data set 'cifar-1O'.*cifar-10"):
        get_dataset("cifar-1O")
    spec = ElevaterDataset("mnist", "classification/elsewhere", 10, "accuracy", ("{}",),
                           train=SplitFiles("a.txt"), test=SplitFiles("b.txt"))
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(spec)
    with pytest.raises(ValueError, match="unknown metric"):
        ElevaterDataset("x", "classification/x", 2, "top1", ("{}",), train=SplitFiles("a"), test=SplitFiles("b"))
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        ElevaterDataset("x", "classification/x", 2, "accuracy", ("{}",), train=SplitFiles("a"), test=SplitFiles("b"),
                        classnames=("a", "b", "c"))
