"""`raykd report`: the page and its PNGs for a run, a 2-trial sweep and ELEVATER results, rendered in
headless Chromium (not blank); and on a real tiny `raykd train` run."""
from __future__ import annotations

import re

import pytest

from raykd.cli import main
from raykd.report.page import build_report
from tests.conftest import tiny_overrides
from tests.report.conftest import METRIC, not_blank, screenshot, write_run


def images(page) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text())


def test_page_for_run_sweep_and_elevater(tmp_path, sweep_dir, elevater_dirs):
    write_run(tmp_path / "run", 1e-3, [0.25, 0.5, 0.75])
    page = build_report([tmp_path / "run", sweep_dir, *elevater_dirs], tmp_path / "report", title="t")
    text = page.read_text()
    for heading in ("Run run", "Sweep lr", "Trials compared", "ELEVATER, linear_probe", f"Best {METRIC} per run"):
        assert heading in text
    srcs = images(page)
    assert len(srcs) == len(set(srcs)) and all((page.parent / s).stat().st_size > 1000 for s in srcs)
    names = {s.rsplit("/", 1)[-1] for s in srcs}
    assert {"run0-train_loss.png", "run0-train_lr.png", "run0-train_samples_per_s.png",
            "run0-zeroshot_shapes.png", "run0-retrieval_shapes.png",  # every evaluation metric, by task/data set
            "sweep0-trials-zeroshot_shapes_top1.png", "sweep0-train_loss.png", "sweep0-zeroshot_shapes_top1.png",
            "sweep0-best-zeroshot_shapes_top1.png", "elevater-linear_probe.png"} <= names
    assert '<tr class=best><td>aaaaa_00000</td>' in text  # the best trial highlighted in the table
    colours, ink = not_blank(screenshot(page, tmp_path / "page.png"))
    assert colours > 50 and ink > 0.05, (colours, ink)


def test_cli_rejects_a_directory_it_cannot_read(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "not a run" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_report_on_a_tiny_training_run(ray_session, builtin_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "quickstart", "--run-dir", str(run_dir)] + [
        f"--set={s}" for s in tiny_overrides(builtin_root, **{"eval.linear_probe.every_n_epochs": 0})]
    assert main(args) == 0
    assert main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == 0
    page = tmp_path / "report" / "index.html"
    names = {s.rsplit("/", 1)[-1] for s in images(page)}
    assert {"run0-train_loss.png", "run0-train_lr.png", "run0-train_samples_per_s.png", "run0-zeroshot_shapes.png"} <= names
    colours, ink = not_blank(screenshot(page, tmp_path / "page.png"))
    assert colours > 50 and ink > 0.05, (colours, ink)
