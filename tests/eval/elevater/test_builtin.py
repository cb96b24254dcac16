"""shapes and digits written in ELEVATER layout."""
import zipfile

from raykd.data.synthetic import DIGIT_NAMES, SHAPE_CLASSES, SHAPE_TEMPLATES
from raykd.eval.elevater import get_dataset
from raykd.eval.elevater.builtin import ensure_written, write_builtin
from raykd.eval.elevater.catalogue import builtin_spec
from raykd.eval.elevater.reader import load_dataset


def test_builtins_in_elevater_layout(builtin_data_root):
    folder = builtin_data_root / "classification" / "shapes_builtin"
    assert {p.name for p in folder.iterdir()} == {"labels.txt", "train.txt", "test.txt", "train.zip", "test.zip"}
    first = (folder / "train.txt").read_text().splitlines()[0]
    assert first.startswith("train.zip@train/000000.jpg ") and first.split()[1].isdigit()
    with zipfile.ZipFile(folder / "test.zip") as zf:
        assert len(zf.namelist()) == 800 and zf.read("test/000000.jpg")[:2] == b"\xff\xd8"  # JPEG as generated
    shapes = load_dataset(builtin_data_root, get_dataset("shapes"))
    assert (len(shapes.train), len(shapes.test)) == (256, 800)
    assert shapes.classnames == list(SHAPE_CLASSES) and shapes.classnames_source == "labels.txt"
    assert get_dataset("shapes").templates == SHAPE_TEMPLATES
    assert shapes.test.images[0].shape == (64, 64, 3)
    digits = load_dataset(builtin_data_root, get_dataset("digits"), ("test",))
    assert digits.classnames == list(DIGIT_NAMES) and len(digits.test) == 360
    assert not ensure_written(get_dataset("digits"), builtin_data_root)  # complete: nothing to do


def test_a_copy_under_another_id(builtin_data_root, builtin_cache, tmp_path):
    folder = write_builtin("digits", tmp_path, dataset_id="digits-b", train_size=200, cache_root=builtin_cache)
    assert folder == tmp_path / "classification" / "digits_b_builtin"
    data = load_dataset(tmp_path, builtin_spec("digits", "digits-b"), ("test",))
    original = load_dataset(builtin_data_root, get_dataset("digits"), ("test",))
    assert data.test.labels == original.test.labels
