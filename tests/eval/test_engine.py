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


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_a_lost_actor_s_unfinished_items_run_again_elsewhere_and_each_is_kept_once(local_ray, tmp_path, capsys):
    """One actor runs a data set's items a, b, c in turn, and its process dies during b (as on a lost node):
    a's result is kept, b and c run on a new actor, d (the next data set) after them; each result once."""
    log = str(tmp_path)
    items = [fakes.LoggedItem("a", "set1", log), fakes.LoggedItem("b", "set1", log, die_times=1),
             fakes.LoggedItem("c", "set1", log), fakes.LoggedItem("d", "set2", log)]
    seen = []
    out = run_pool(functools.partial(fakes.make_fake_model, dim=4), items, max_actors=1, on_result=seen.append)
    assert [r[0] for r in out] == ["a", "b", "c", "d"] and sorted(seen) == sorted(out)
    assert [len(item.runs()) for item in items] == [1, 2, 1, 1]  # only the unfinished b and c ran again
    first, second = items[1].runs()
    assert items[0].runs() == [first] and out[1][1:] == (second, 2) and second != first  # b: on a new actor
    assert out[2][1] == out[3][1] == second  # the replacement takes c, then the next data set
    text = capsys.readouterr().out
    assert "evaluation actor lost (ActorDiedError" in text
    assert "its 2 unfinished item(s) run again on another actor (retry 1 of 2)" in text


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_an_item_whose_actor_keeps_dying_fails_after_its_retries_and_the_others_run(local_ray, tmp_path):
    log = str(tmp_path)
    items = [fakes.LoggedItem("doomed", "set1", log, die_times=9), fakes.LoggedItem("fine", "set2", log)]
    out = run_pool(functools.partial(fakes.make_fake_model, dim=4), items, max_actors=1, retries=1)
    assert len(items[0].runs()) == 2 and out[0][1] is None
    assert out[0][2].startswith("ActorDiedError") and "its actor was lost 2 times" in out[0][2]
    assert out[1][0] == "fine" and out[1][2] == 1
