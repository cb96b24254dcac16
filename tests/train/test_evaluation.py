"""Evaluation during training: the schedule, the data it runs on, skips, failures, and the loop's epoch ends."""
from __future__ import annotations

import pytest
import torch

from raykd.config import config_to_dict, load_config
from raykd.config.loading import build_config
from raykd.eval.tasks import list_tasks
from raykd.train import evaluation as ev
from raykd.train.loop import run_training
from tests.conftest import REPO, tiny_overrides
from tests.eval.data_root import write_data_root
from tests.eval.fakes import FakeDualEncoder, fail_task
from tests.train.local import LocalRun

NO_TASKS = {f"eval.{t}.every_n_epochs": 0 for t in list_tasks()}


def cfg_for(root, **extra):
    base = {"data.builtin": "digits", "data.builtin_train_size": 256, "data.augment": "none",
            "data.shuffle_buffer": 0, **NO_TASKS}
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(root, **{**base, **extra}))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One built-in cache (digits shards and evaluation view) for the module."""
    return tmp_path_factory.mktemp("builtin-cache")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; more threads only spin on a busy 2-core machine
    yield
    torch.set_num_threads(before)


def test_config_sections_match_the_task_registry(tmp_path):
    cfg = cfg_for(tmp_path)  # a section for every registered task
    assert sorted(cfg.eval.tasks) == list_tasks() and ev.task_schedule(cfg) == {}
    cfg = cfg_for(tmp_path, **{"eval.zeroshoot.every_n_epochs": 1})  # the config does not know the tasks ...
    with pytest.raises(ValueError, match="eval.zeroshoot: unknown task; did you mean 'zeroshot'?"):
        ev.task_schedule(cfg)  # ... the task registry does (raykd check, training start)


def test_task_sections_keep_the_recipe_shape(tmp_path):
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["eval.knn.every_n_epochs=2"])
    assert cfg.eval.tasks["knn"].every_n_epochs == 2
    cfg = build_config({"eval": {"knn": {"options": {"k": 3}}}})
    assert cfg.eval.task("zeroshot").every_n_epochs == 1 and cfg.eval.task("knn").options == {"k": 3}  # defaults stay
    assert cfg.eval.task("sts").every_n_epochs == 0
    saved = config_to_dict(cfg)["eval"]  # the resolved config.yaml and checkpoints: eval.<task>, as in recipes
    assert "tasks" not in saved and saved["knn"] == {"every_n_epochs": 0, "options": {"k": 3}}
    assert build_config(config_to_dict(cfg)) == cfg


def test_schedule_and_due_epochs(tmp_path):
    assert ev.task_schedule(load_config(REPO / "recipes/quickstart.yaml")) == {
        "zeroshot": 1, "retrieval": 1, "linear_probe": 5}
    cfg = cfg_for(tmp_path, **{"eval.knn.every_n_epochs": 2, "eval.sts.every_n_epochs": 3})
    assert ev.task_schedule(cfg) == {"knn": 2, "sts": 3}
    cfg.eval.during_training = False
    assert ev.task_schedule(cfg) == {}
    # every 2nd epoch (0-based epochs 1, 3) and always after the last one
    assert [e for e in range(5) if ev.is_due(2, e, epochs=5)] == [1, 3, 4]
    assert [e for e in range(5) if ev.is_due(0, e, epochs=5)] == []


def test_bad_eval_sections(tmp_path):
    with pytest.raises(ValueError, match="'eval.knn.every_n_epochs' must be >= 0"):
        cfg_for(tmp_path, **{"eval.knn.every_n_epochs": -1})  # when the recipe is loaded (raykd check)
    with pytest.raises(ValueError, match=r"eval.knn.options: task 'knn' takes no option\(s\) \['kk'\]"):
        ev.task_schedule(cfg_for(tmp_path, **{"eval.knn.options": {"kk": 3}}))


def test_builtin_view_with_per_task_frequencies_and_skips(cache, capsys):
    cfg = cfg_for(cache, **{"train.epochs": 3, "eval.zeroshot.every_n_epochs": 1,
                               "eval.linear_probe.every_n_epochs": 2, "eval.retrieval.every_n_epochs": 5,
                               "eval.linear_probe.options": {"grid": [1.0]}, "eval.sts.every_n_epochs": 1})
    evaluate = ev.epoch_evaluator(cfg)
    assert "sts skipped: no sts data set among ['digits'] under" in capsys.readouterr().out
    model = FakeDualEncoder(dim=8, image_dim=12, image_size=4)
    tasks_at = [{k.split("/")[0] for k in evaluate(model, epoch)} for epoch in range(3)]
    assert tasks_at == [{"zeroshot"}, {"zeroshot", "linear_probe"}, {"zeroshot", "linear_probe", "retrieval"}]
    out = evaluate(model, 2)
    assert all(k.split("/")[1] == "digits" and isinstance(v, float) for k, v in out.items())
    assert {"zeroshot/digits/top1", "linear_probe/digits/best_C", "retrieval/digits/mean_recall"} <= set(out)
    assert "eval after epoch 2: linear_probe, retrieval, zeroshot in" in capsys.readouterr().out
    assert (cache / "classification/digits/meta.json").is_file()  # the view lives in data.builtin_root


def test_data_root_and_datasets(tmp_path):
    root = write_data_root(tmp_path / "data")
    cfg = cfg_for(tmp_path, **{"eval.data_root": str(root), "eval.datasets": ["toy", "STS12"],
                               "eval.zeroshot.every_n_epochs": 1, "eval.sts.every_n_epochs": 1})
    out = ev.epoch_evaluator(cfg)(FakeDualEncoder(dim=8, image_dim=12), 0)
    assert {k.rsplit("/", 1)[0] for k in out} == {"zeroshot/toy", "sts/STS12"}
    cfg.eval.datasets = ["toy", "imagenet"]
    with pytest.raises(ValueError, match=r"eval.datasets: no data set \['imagenet'\]"):
        ev.epoch_evaluator(cfg)
    cfg.eval.datasets = ["STS16"]
    with pytest.raises(FileNotFoundError, match="STS16-en-test"):
        ev.epoch_evaluator(cfg)


def test_nothing_to_evaluate(cache, capsys):
    assert ev.epoch_evaluator(cfg_for(cache)) is None  # no task enabled
    cfg = cfg_for(cache, **{"data.builtin": "", "eval.zeroshot.every_n_epochs": 1})
    assert ev.epoch_evaluator(cfg) is None
    assert "nothing to evaluate on" in capsys.readouterr().out


def test_a_failing_task_is_reported_and_the_others_kept(cache, capsys, monkeypatch):
    cfg = cfg_for(cache, **{"eval.zeroshot.every_n_epochs": 1, "eval.knn.every_n_epochs": 1})
    evaluate = ev.epoch_evaluator(cfg)
    fail_task(monkeypatch, "knn", RuntimeError("boom"))
    out = evaluate(FakeDualEncoder(dim=8, image_dim=12), 0)
    assert {k.split("/")[0] for k in out} == {"zeroshot"}
    assert "eval: knn/digits failed after epoch 0: RuntimeError: boom" in capsys.readouterr().out


def test_loop_reports_due_metrics_at_epoch_ends_on_rank_0(cache):
    cfg = cfg_for(cache, **{"train.epochs": 2, "eval.zeroshot.every_n_epochs": 1,
                               "eval.knn.every_n_epochs": 2})
    run = LocalRun(cfg)
    run_training(cfg, run.context(evaluate=ev.epoch_evaluator(cfg)))
    evals = [{k.split("/")[0] for k in r if k.count("/") == 2} for r in run.reports]
    epoch_ends = [r["epoch"] for r in run.reports if any(k.count("/") == 2 for k in r)]
    assert epoch_ends == [1, 2]
    assert [e for e in evals if e] == [{"zeroshot"}, {"zeroshot", "knn"}]
    assert run.reports[-1]["zeroshot/digits/top1"] >= 0.0
    cfg.train.epochs = 1
    other_rank = LocalRun(cfg)
    run_training(cfg, other_rank.context(evaluate=ev.epoch_evaluator(cfg), rank=1))
    assert not any(k.count("/") == 2 for r in other_rank.reports for k in r)
