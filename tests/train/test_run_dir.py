"""Which run directory a `raykd train` uses: --resume picks the newest run of the same name that got going."""
from __future__ import annotations

import pytest

from raykd.config import load_config
from raykd.train.trainer import latest_run_dir, resolve_run_dir
from tests.conftest import REPO


def make_run(root, name: str, reported: bool = True):
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run: {}\n")
    if reported:
        (run / "results.jsonl").write_text("")
    return run


def test_resume_picks_the_newest_run_of_that_name_that_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    older = make_run(tmp_path, "t-20260101-000000")
    make_run(tmp_path, "t-long-20260201-000000")  # a longer name sharing the prefix
    make_run(tmp_path, "t-20260301-000000", reported=False)  # failed before its first report
    assert latest_run_dir("t").resolve() == older
    assert latest_run_dir("nothing") is None
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["run.name=t", "run.resume=auto"])
    assert resolve_run_dir(cfg) == older
    fresh = resolve_run_dir(load_config(REPO / "recipes/quickstart.yaml", ["run.name=t"]))
    assert fresh != older and fresh.parent == (tmp_path / "runs").resolve() and fresh.name.startswith("t-")


def test_an_explicit_run_directory_that_reported_needs_resume(tmp_path):
    run = make_run(tmp_path, "mine")
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["run.name=t"])
    with pytest.raises(ValueError, match=r"mine already holds a run: pass --resume"):
        resolve_run_dir(cfg, run)
    cfg.run.resume = "auto"
    assert resolve_run_dir(cfg, run) == run.resolve()


def test_a_storage_path_holding_the_run_name_needs_resume(tmp_path):
    (tmp_path / "storage" / "t").mkdir(parents=True)
    cfg = load_config(REPO / "recipes/quickstart.yaml", ["run.name=t", f"run.storage_path={tmp_path / 'storage'}"])
    with pytest.raises(ValueError, match=r"run.storage_path .* already holds checkpoints of a run named 't'"):
        resolve_run_dir(cfg, tmp_path / "new")
    cfg.run.resume = "auto"
    assert resolve_run_dir(cfg, tmp_path / "new") == (tmp_path / "new").resolve()
