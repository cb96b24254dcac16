"""Losing a node during an ELEVATER evaluation (see node_loss_cluster.py): the items its actor had not finished
run again on another actor, and the results hold every item exactly once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_items_of_a_lost_node_run_elsewhere_none_lost_none_twice(tiny_checkpoint, builtin_data_root, tmp_path):
    script = Path(__file__).with_name("node_loss_cluster.py")
    repo = str(Path(__file__).parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(tiny_checkpoint), str(builtin_data_root), str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["code"] == [0] and not result["alive"], proc.stdout[-3000:]

    story = "\n".join(line for line in proc.stdout.splitlines()
                      if line.startswith(("[", "evaluation", "running", "RESULT")))
    print(story)  # the progress lines, the loss and the retry (pytest -s)
    lost = [line for line in proc.stdout.splitlines() if line.startswith("evaluation actor lost")]
    assert lost and "run again on another actor (retry 1 of 2)" in lost[0], story
    rows = json.loads((out / "results.json").read_text())["rows"]
    keys = [(r["dataset"], r["mode"], r["shots"], r["seed"]) for r in rows]
    expected = {(d, "zeroshot", 0, 0) for d in ("shapes", "digits")} | {
        (d, "linear_probe", 5, s) for d in ("shapes", "digits") for s in range(4)}
    assert sorted(keys) == sorted(expected)  # each item once: none lost, none twice
    assert all(r["error"] is None for r in rows), [r["error"] for r in rows]
    journal = sorted(p.stem for p in (out / "items").glob("*__seed*.json"))
    assert len(journal) == 10 and set(result["done_before"]) <= set(journal)
