"""Built-in and local data on a (simulated) multi-node Ray cluster; see tests/data/multinode_cluster.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def multinode(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("multinode")
    script = Path(__file__).with_name("multinode_cluster.py")
    repo = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(script), str(tmp)], capture_output=True, text=True, timeout=240, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_builtin_data_is_generated_on_each_node_that_reads_it(multinode):
    assert multinode["urls"][0].startswith("builtin://digits@")
    assert multinode["skipped"] == {}  # before: every shard `missing_shard`, skipped
    assert multinode["rows"] == multinode["planned"] == 1437
    assert multinode["node_caches"] == [True, True]  # both nodes read a shard, each from its own cache


def test_local_path_missing_on_a_node_fails_naming_path_and_node(multinode):
    error = multinode["local_error"]
    assert error is not None and "driver-only/digits/train/shard-00000" in error
    assert f"is not readable on node {multinode['node_ips'][0]}" in error and "shared storage" in error
