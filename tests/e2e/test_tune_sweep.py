"""`raykd tune` against a Ray head: a 4-trial sweep (2 losses x 2 learning rates) on shapes, CPU.

The driver is killed once the sweep is under way and the sweep is resumed with `--resume`; ASHA stops
a trial early, the best trial is reported (table, trials.csv, best.json) and, with the driver still
connected, no placement group or actor of the sweep is left on the cluster.

The metric is `train/loss` (mode min) so ASHA's decision does not hang on a few steps of zero-shot
accuracy (near chance this early): trials start in grid order, two at a time, so the last one (SigLIP
at lr 1e-6, whose loss stays near its initial ~7) starts when the first two have finished and reaches
the first rung after they recorded theirs (InfoNCE ~3.5-3.9, SigLIP at 5e-4 lower than 7): it is worse
than the rung's median and is stopped. Two at a time (and one Ray Data read task per trial) also keeps
the sweep's memory small on a shared machine.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, tiny_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SWEEP = """\
recipe: {recipe}
name: losses-lr
metric: train/loss
mode: min
search_space:
  loss.name: {{grid: [InfoNCE, SigLIP]}}
  optim.lr: {{grid: [5.0e-4, 1.0e-6]}}
max_concurrent_trials: 2
scheduler: {{name: asha, grace_period: 256, reduction_factor: 2, max_t: 512}}
storage_path: {storage}
"""
# One epoch of 512 samples in batches of 32 (16 steps), reports every 4 steps: rungs at 256 and 512 samples.
SHORT = {"eval.zeroshot.every_n_epochs": 0, "eval.retrieval.every_n_epochs": 0,
         "eval.linear_probe.every_n_epochs": 0, "data.read_concurrency": 1}
DONE = "SWEEP-DRIVER-DONE"
# Ray Data's per-cluster singletons (detached, created on the cluster's first Ray Data use, shared by all jobs).
RAY_DATA_SINGLETONS = {"_StatsActor", "_AutoscalingCoordinatorActor"}
DRIVER = f"""
import sys
from raykd.cli import main
code = main(sys.argv[1:])
print("{DONE}", code, flush=True)
sys.stdin.readline()  # stay connected until the test has looked at the cluster
"""


def start_driver(head, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, *args], env=head.env(), cwd=REPO, stdin=subprocess.PIPE,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            break
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout} s (driver rc {proc.poll()})\n{log.read_text()[-6000:]}")


def trials_started(exp: Path) -> list[str]:
    """Trial ids once the experiment state is saved and trials have started (Tune wrote their params)."""
    if not (exp / "tuner.pkl").is_file() or not list(exp.glob("experiment_state-*.json")):
        return []
    return sorted(p.parent.name for p in exp.glob("*/params.json"))


def leftovers(head, before: set[str]) -> tuple[list, list]:
    actors = [(a["class_name"], a.get("name")) for a in head.state("actors")
              if a["state"] == "ALIVE" and a["actor_id"] not in before and a["class_name"] not in RAY_DATA_SINGLETONS]
    groups = [g["placement_group_id"] for g in head.state("placement-groups") if g["state"] != "REMOVED"]
    return actors, groups


def test_sweep_asha_resume_and_cleanup(ray_head, builtin_root, tmp_path):
    sweep = tmp_path / "losses-lr.yaml"
    sweep.write_text(SWEEP.format(recipe=REPO / "recipes/quickstart.yaml", storage=tmp_path / "sweeps"))
    args = ["tune", str(sweep)] + [f"--set={s}" for s in tiny_overrides(builtin_root, **SHORT)]
    exp = tmp_path / "sweeps" / "losses-lr"
    before = {a["actor_id"] for a in ray_head.state("actors") if a["state"] == "ALIVE"}

    # 1. Start the sweep, and kill its driver once trials are running.
    log1 = tmp_path / "driver1.log"
    first = start_driver(ray_head, args, log1)
    try:
        started = wait_for(lambda: trials_started(exp), 300, "trials to start", first, log1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)

    # 2. Resume it to the end; look at the cluster while the driver is still connected.
    log2 = tmp_path / "driver2.log"
    second = start_driver(ray_head, args + ["--resume"], log2)
    try:
        wait_for(lambda: DONE in log2.read_text(), 600, "the resumed sweep", second, log2)
        out = log2.read_text()
        assert f"{DONE} 0" in out and "resuming sweep" in out, out[-6000:]
        deadline, left = time.time() + 60, None
        while time.time() < deadline:  # Ray Train's cleaners remove a stopped trial's group within seconds
            left = leftovers(ray_head, before)
            if left == ([], []):
                break
            time.sleep(2)
        assert left == ([], []), f"left behind: actors {left[0]}, placement groups {left[1]}"
    finally:
        if second.poll() is None:
            second.communicate(input="\n", timeout=120)

    rows = list(csv.DictReader((exp / "trials.csv").open()))
    assert len(rows) == 4 and set(started) <= {r["trial_id"] for r in rows}  # resumed, not restarted
    by_config = {(r["loss.name"], float(r["optim.lr"])): r for r in rows}
    assert by_config[("SigLIP", 1e-6)]["status"] == "stopped early", rows
    assert all(r["status"] in ("completed", "stopped early") for r in rows), rows
    assert any(r["status"] == "completed" for r in rows)
    best = json.loads((exp / "best.json").read_text())
    assert best["config"]["loss.name"] == "InfoNCE" and best["metric"] == "train/loss" and best["mode"] == "min"
    for row in rows:  # a trial that trained to its end reported its last checkpoint, with the result
        assert (row["status"] != "completed") or Path(row["checkpoint"], "state.pt").is_file(), row
    best_row = by_config[(best["config"]["loss.name"], best["config"]["optim.lr"])]
    assert best_row["trial_id"] == best["trial_id"] and (best["checkpoint"] or "") == best_row["checkpoint"]
    assert "best: trial" in out and "stopped early" in out and "trials.csv" in out
