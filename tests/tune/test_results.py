"""The end of a sweep: Tune results from Train reports, trial rows, statuses, the best trial, CSV and table."""
from __future__ import annotations

import csv
import io

from raykd.tune.results import (COMPLETED, ERROR, STOPPED, best_row, best_summary, to_csv, to_table, trial_row,
                                trial_status)
from raykd.tune.trainable import TuneResults

M = "zeroshot/shapes/top1"


def test_only_reports_with_the_metric_reach_tune_and_carry_samples_and_checkpoint():
    results = TuneResults(M, global_batch=64, samples_total=640)
    assert results.result({"step": 4, "train/loss": 3.0}) is None  # no evaluation yet
    assert results.result({"step": 5, "epoch": 1, M: 0.2}, "/ckpt/1") == {
        "step": 5, "epoch": 1, M: 0.2, "samples": 320, "samples_total": 640, "checkpoint_path": "/ckpt/1"}
    assert results.result({"step": 8, "train/loss": 2.0}) is None
    last = results.result({"step": 10, "epoch": 2}, "/ckpt/2")  # the last report: forwarded with the latest value
    assert last[M] == 0.2 and last["samples"] == 640 and last["checkpoint_path"] == "/ckpt/2"


def test_training_metric_forwards_every_step_report_but_the_last():
    results = TuneResults("train/loss", global_batch=32, samples_total=512)
    assert results.result({"step": 4, "train/loss": 3.0})["samples"] == 128
    # The last step's report is held back: the final report carries its value with the last checkpoint,
    # so a scheduler stopping the trial at the end of its budget stops it after that checkpoint.
    assert results.result({"step": 16, "train/loss": 2.5}) is None
    final = results.result({"step": 16, "epoch": 1}, "/c")
    assert final["train/loss"] == 2.5 and final["checkpoint_path"] == "/c" and final["samples"] == 512


def test_status_from_samples_and_error():
    assert trial_status({"samples": 640, "samples_total": 640}, None) == COMPLETED
    assert trial_status({"samples": 320, "samples_total": 640}, None) == STOPPED
    assert trial_status({}, RuntimeError("boom")) == ERROR


def rows():
    keys = ["loss.name", "optim.lr"]
    return [
        trial_row("t0", {"loss.name": "InfoNCE", "optim.lr": 1e-3}, {M: 0.5, "samples": 640, "samples_total": 640,
                                                                     "checkpoint_path": "/c0"}, None, keys, M),
        trial_row("t1", {"loss.name": "SigLIP", "optim.lr": 1e-3}, {M: 0.2, "samples": 320, "samples_total": 640},
                  None, keys, M),
        trial_row("t2", {"loss.name": "SigLIP", "optim.lr": 1e-2}, {M: 0.9}, RuntimeError("nan"), keys, M),
    ]


def test_best_row_ignores_errors_and_respects_mode():
    assert best_row(rows(), M, "max")["trial_id"] == "t0"
    assert best_row(rows(), M, "min")["trial_id"] == "t1"
    assert best_row([], M, "max") is None


def test_csv_and_table_and_best_summary():
    table_rows = rows()
    parsed = list(csv.DictReader(io.StringIO(to_csv(table_rows))))
    assert [r["status"] for r in parsed] == [COMPLETED, STOPPED, ERROR] and parsed[0]["checkpoint"] == "/c0"
    table = to_table(table_rows)
    assert "trial_id" in table and "stopped early" in table and "checkpoint" not in table
    summary = best_summary(table_rows[0], ["loss.name", "optim.lr"], M, "max", ["train.epochs=3"])
    assert summary["overrides"] == ["train.epochs=3", 'loss.name="InfoNCE"', "optim.lr=0.001"]
    assert summary["checkpoint"] == "/c0" and summary["value"] == 0.5
