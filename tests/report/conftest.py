"""Directories in the formats `raykd report` reads, written by the writers raykd uses for them (the run
logger, the sweep's trials.csv/best.json) or, for evaluation results, by hand in the documented format."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from raykd.train.run_logger import RunLogger
from raykd.tune import results as tune_results

METRIC = "zeroshot/shapes/top1"


def train_reports(lr: float, top1: list[float]) -> list[dict]:
    """What a run reports: a training step every 4 steps, an evaluation at each epoch end (every 8 steps)."""
    reports = []
    for step in range(4, 8 * len(top1) + 1, 4):
        reports.append({"step": step, "epoch": (step - 1) // 8, "train/loss": 4.0 - step / 10,
                        "train/lr": lr * (1 - step / 100), "train/samples_per_s": 1000.0 + step})
        if step % 8 == 0:
            reports.append({"step": step, "epoch": step // 8, METRIC: top1[step // 8 - 1],
                            "retrieval/shapes/mean_recall": top1[step // 8 - 1] / 2})
    return reports


def write_run(run_dir: Path, lr: float, top1: list[float]) -> list[dict]:
    logger = RunLogger(str(run_dir))
    reports = train_reports(lr, top1)
    for report in reports:
        logger.log(report)
    return reports


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """A 2-trial sweep experiment: trial run directories, trials.csv and best.json."""
    exp = tmp_path / "sweeps" / "lr"
    trials = {"aaaaa_00000": (2e-3, [0.2, 0.5]), "aaaaa_00001": (1e-4, [0.1, 0.15])}
    rows = []
    for trial_id, (lr, top1) in trials.items():
        write_run(exp / trial_id, lr, top1)
        rows.append(tune_results.trial_row(trial_id, {"optim.lr": lr}, {METRIC: top1[-1], "samples": 512,
                                           "samples_total": 512, "checkpoint_path": f"/ckpt/{trial_id}"},
                                           None, ["optim.lr"], METRIC))
    tune_results.write_text(str(exp / "trials.csv"), tune_results.to_csv(rows))
    best = tune_results.best_summary(tune_results.best_row(rows, METRIC, "max"), ["optim.lr"], METRIC, "max", [])
    tune_results.write_text(str(exp / "best.json"), tune_results.dump_json(best))
    return exp


def write_elevater(out: Path, model: str, values: dict[str, list[float]]) -> None:
    """results.json as `raykd eval elevater` writes it (raykd/eval/elevater/results.py's docstring)."""
    summary = [{"dataset": d, "setting": "linear_probe", "metric": "accuracy", "mean": sum(v) / len(v),
                "std": (max(v) - min(v)) / 2, "seeds": list(range(len(v))), "failed_seeds": [], "n_test": 100,
                "seconds": 1.0, "error": None} for d, v in values.items()]
    summary.append({"dataset": "broken", "setting": "linear_probe", "metric": "accuracy", "mean": None, "std": None,
                    "seeds": [], "failed_seeds": [0], "n_test": 0, "seconds": 0.1, "error": "boom"})
    doc = {"model_name": model, "rows": [], "summary": summary,
           "metrics": {f"elevater_linear_probe/{s['dataset']}/accuracy": s["mean"] for s in summary if s["seeds"]},
           "errors": {"broken linear_probe seed 0": "boom"}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1))


@pytest.fixture
def elevater_dirs(tmp_path) -> list[Path]:
    a, b = tmp_path / "elevater" / "ckpt-a", tmp_path / "elevater" / "ckpt-b"
    write_elevater(a, "ckpt-a", {"cifar10": [0.8, 0.82], "dtd": [0.5, 0.54], "eurosat": [0.7, 0.7]})
    write_elevater(b, "ckpt-b", {"cifar10": [0.6, 0.62], "dtd": [0.55, 0.57], "eurosat": [0.9, 0.92]})
    return [a, b]


def chromium() -> str:
    """The headless browser; CI (CI set) installs it, so there a missing one fails instead of skipping."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return exe


def screenshot(page: Path, png: Path, size: str = "1400,2400") -> Path:
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png.is_file(), done.stderr[-3000:]
    return png


def not_blank(png: Path) -> tuple[int, float]:
    """(distinct colours, fraction of non-white pixels) of a screenshot."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    pixels = list(image.getdata())
    colours = len(set(pixels))
    ink = sum(1 for p in pixels if sum(p) < 3 * 245) / len(pixels)
    return colours, ink
