"""Contract test over the task registry: every registered task runs on a tiny data set of its kind."""
import math

import pytest

from raykd.eval import datasets as ds
from raykd.eval.engine import run_task
from raykd.eval.features import FeatureCache
from raykd.eval.tasks import canonical_name, get_task, list_tasks, register_task

from ..data_root import EXPECTED_DATASETS, write_data_root
from ..fakes import FakeDualEncoder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_data_root(tmp_path_factory.mktemp("eval-data"))


def test_all_tasks_registered():
    assert list_tasks() == sorted(["zeroshot", "linear_probe", "knn", "clustering", "retrieval", "sts",
                                   "passage_retrieval", "wiki_sections", "word_similarity", "feature_analysis"])


@pytest.mark.parametrize("name", list_tasks())
def test_task_contract(root, name):
    fn = get_task(name)
    assert fn.task_name == name and fn.data_kind in ds.KINDS and fn.__doc__
    assert fn.modality in ("image", "text") and all(canonical_name(a) == name for a in fn.aliases)
    dataset = EXPECTED_DATASETS[fn.data_kind][0]
    model = FakeDualEncoder(dim=8, image_dim=12).train()
    out = run_task(name, model, ds.load_dataset(fn.data_kind, root, dataset), dataset, cache=FeatureCache(),
                   batch_size=5)
    assert out and all(k.startswith(f"{name}/{dataset}/") and k.count("/") == 2 for k in out)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert model.training  # mode restored


def test_duplicate_and_bad_names_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_task("knn", data_kind="classification")(lambda model: {})
    with pytest.raises(ValueError, match="/"):
        register_task("a/b", data_kind="classification")
    with pytest.raises(ValueError, match="alias 'linear' of 'probe2' is already taken"):
        register_task("probe2", data_kind="classification", aliases=("linear",))(lambda model: {})
    with pytest.raises(ValueError, match="modality must be one of"):
        register_task("audio", data_kind="classification", modality="audio")
