"""What `raykd report` plots is what was written: runs, sweeps and evaluation results parsed back."""
from __future__ import annotations

import pytest

from raykd.report.sources import Evaluation, Run, Sweep, load, read_results_jsonl, read_scalars
from tests.report.conftest import METRIC, write_run


def test_run_series_equal_the_reports(tmp_path):
    reports = write_run(tmp_path / "run", 1e-3, [0.25, 0.5, 0.75])
    run = load(tmp_path / "run")
    assert isinstance(run, Run) and run.name == "run"
    for key in ("train/loss", "train/lr", "train/samples_per_s"):
        expected = [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in reports if key in r]
        assert run.train[key] == expected  # float32 in TensorBoard
    assert run.metrics[METRIC] == [(8, 0.25), (16, 0.5), (24, 0.75)]  # results.jsonl: exact
    assert run.metrics["retrieval/shapes/mean_recall"] == [(8, 0.125), (16, 0.25), (24, 0.375)]
    assert set(run.metrics) == {METRIC, "retrieval/shapes/mean_recall"}  # training scalars are not metrics
    assert run.last(METRIC) == 0.75


def test_tensorboard_only_run_takes_its_metrics_from_the_scalars(tmp_path):
    write_run(tmp_path / "run", 1e-3, [0.25, 0.5])
    (tmp_path / "run" / "results.jsonl").unlink()
    run = load(tmp_path / "run")
    assert run.evals == {} and [s for s, _ in run.metrics[METRIC]] == [8, 16]
    assert read_scalars(tmp_path / "run" / "tensorboard")[METRIC][-1] == (16, 0.5)


def test_results_jsonl_skips_non_numbers(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"step": 3, "epoch": 0, "metrics": {"a/b/c": 0.5, "a/b/d": NaN, "a/b/e": "x"}}\n\n')
    assert read_results_jsonl(path) == {"a/b/c": [(3, 0.5)]}


def test_sweep_trials_rows_and_best(sweep_dir):
    sweep = load(sweep_dir)
    assert isinstance(sweep, Sweep) and sweep.name == "lr"
    assert [t.name for t in sweep.trials] == ["aaaaa_00000", "aaaaa_00001"]
    assert (sweep.metric, sweep.mode, sweep.best["trial_id"]) == (METRIC, "max", "aaaaa_00000")
    assert [(r["trial_id"], r["optim.lr"], r[METRIC], r["status"]) for r in sweep.rows] == [
        ("aaaaa_00000", 2e-3, 0.5, "completed"), ("aaaaa_00001", 1e-4, 0.15, "completed")]
    assert sweep.trials[1].metrics[METRIC] == [(8, 0.1), (16, 0.15)]


def test_elevater_results(elevater_dirs):
    evaluation = load(elevater_dirs[0])
    assert isinstance(evaluation, Evaluation) and evaluation.is_elevater and evaluation.model == "ckpt-a"
    assert [(d["dataset"], d["mean"]) for d in evaluation.datasets] == [
        ("cifar10", pytest.approx(0.81)), ("dtd", pytest.approx(0.52)), ("eurosat", pytest.approx(0.7))]  # failed one left out
    assert evaluation.metrics["elevater_linear_probe/dtd/accuracy"] == pytest.approx(0.52)


def test_raykd_eval_results(tmp_path):
    (tmp_path / "results.json").write_text('{"checkpoint": "/c", "step": 5, "metrics": {"knn/digits/top1": 0.9}}')
    evaluation = load(tmp_path)
    assert not evaluation.is_elevater and evaluation.metrics == {"knn/digits/top1": 0.9}


def test_unknown_directory_says_what_it_expected(tmp_path):
    with pytest.raises(ValueError, match="not a run .* a sweep .* or an evaluation"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")
