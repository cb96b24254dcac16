import functools
import json

import pytest

from raykd.eval.engine import TaskItem, evaluate, merge_results, run_pool
from raykd.eval.features import FeatureCache
from raykd.eval.results import write_clip_benchmark_json

from . import fakes
from .data_root import write_data_root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_data_root(tmp_path_factory.mktemp("eval-data"))


def test_evaluate_all_tasks_on_every_dataset(root):
    model, cache = fakes.FakeDualEncoder(dim=8, image_dim=12), FeatureCache()
    tasks = ["zeroshot", "linear_probe", "knn", "clustering", "retrieval", "feature_analysis", "sts",
             "passage_retrieval", "wiki_sections", "word_similarity"]
    out = evaluate(model, tasks, root, cache=cache, batch_size=8,
                   task_options={"linear_probe": {"grid": [1.0]}})
    assert "errors" not in out
    datasets = {tuple(k.split("/")[:2]) for k in out}
    for task in ("zeroshot", "linear_probe", "knn", "clustering"):
        assert {(task, "toy"), (task, "pets")} <= datasets
    for task in ("retrieval", "feature_analysis"):
        assert {(task, "mscoco_2017"), (task, "mini")} <= datasets
    assert {("sts", "STS12"), ("sts", "STSBenchmark"), ("sts", "SICKRelatedness"), ("passage_retrieval", "msmarco"),
            ("wiki_sections", "wikisections"), ("word_similarity", "RG65")} <= datasets
    assert out["linear_probe/toy/best_C"] == 1.0
    # features extracted once per (dataset, split, projection) and shared by the tasks
    assert ("toy", "test", "image", False) in cache and ("toy", "train", "image", False) in cache
    assert ("mscoco_2017", "captions", "text", True) in cache


def test_dataset_selection_and_errors(root, tmp_path):
    model = fakes.FakeDualEncoder(dim=8, image_dim=12)
    out = evaluate(model, ["knn", "sts"], root, datasets=["toy", "STS12", "STS16", "imagenet"])
    assert {k.rsplit("/", 1)[0] for k in out if k != "errors"} == {"knn/toy", "sts/STS12"}
    assert "FileNotFoundError" in out["errors"]["sts/STS16"] and "STS16-en-test" in out["errors"]["sts/STS16"]
    assert "imagenet" in out["errors"]
    empty = evaluate(model, ["wiki_sections"], tmp_path)
    assert set(empty) == {"errors"} and "wiki_sections" in empty["errors"]
    with pytest.raises(ValueError, match="unknown evaluation task"):
        evaluate(model, ["knnn"], root)


def test_failing_task_does_not_lose_the_others(root, monkeypatch):
    model = fakes.FakeDualEncoder(dim=8, image_dim=12)
    fakes.fail_task(monkeypatch, "clustering", RuntimeError("boom"))
    out = evaluate(model, ["clustering", "knn"], root, datasets=["toy"])
    assert out["errors"] == {"clustering/toy": "RuntimeError: boom"} and "knn/toy/top1" in out


def test_write_clip_benchmark_json(tmp_path):
    results = {"zeroshot/cifar10/top1": 0.5, "zeroshot/cifar10/top5": 0.9,
               "zeroshot/cifar10/mean_per_class_recall": 0.4,
               "retrieval/mscoco_2017/image_to_text_R@5": 0.7, "knn/cifar10/top1": 0.6, "errors": {"x": "y"}}
    paths = write_clip_benchmark_json(results, tmp_path / "out", "ViT-B/32 kd")
    assert sorted(p.name for p in paths) == ["cifar10_ViT-B_32_kd_knn.json",
                                             "cifar10_ViT-B_32_kd_zeroshot_classification.json",
                                             "mscoco_2017_ViT-B_32_kd_zeroshot_retrieval.json"]
    zs = json.loads((tmp_path / "out/cifar10_ViT-B_32_kd_zeroshot_classification.json").read_text())
    assert zs == {"dataset": "cifar10", "model": "ViT-B/32 kd", "task": "zeroshot_classification",
                  "metrics": {"acc1": 0.5, "acc5": 0.9, "mean_per_class_recall": 0.4}}
    ret = json.loads((tmp_path / "out/mscoco_2017_ViT-B_32_kd_zeroshot_retrieval.json").read_text())
    assert ret["metrics"] == {"text_retrieval_recall@5": 0.7}
    knn = json.loads((tmp_path / "out/cifar10_ViT-B_32_kd_knn.json").read_text())
    assert knn["metrics"] == {"top1": 0.6} and knn["task"] == "knn"


@pytest.fixture(scope="module")
def local_ray():
    from tests.conftest import start_test_ray

    ray = start_test_ray()
    ray.cloudpickle.register_pickle_by_value(fakes)  # the workers cannot import the tests package
    yield ray


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_actor_pool_runs_a_data_set_per_item(local_ray, root):
    factory = functools.partial(fakes.make_fake_model, dim=8, image_dim=12)
    items = [TaskItem("toy", ["knn"], str(root)),
             TaskItem("mini", ["no_such_task"], str(root))]  # the item fails
    # each actor takes all free CPUs: the cluster holds one, which takes the second item after the first
    out = merge_results(run_pool(factory, items, num_cpus_per_actor=local_ray.available_resources()["CPU"]))
    serial = evaluate(fakes.make_fake_model(dim=8, image_dim=12), ["knn"], root, datasets=["toy"])
    assert {k: v for k, v in out.items() if k != "errors"} == pytest.approx(serial)
    assert set(out["errors"]) == {"mini"}
    assert "unknown evaluation task 'no_such_task'" in out["errors"]["mini"]
