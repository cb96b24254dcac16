"""The built wheel carries the recipes: installed into a fresh virtual environment (outside the checkout),
`raykd recipes list` and `raykd check quickstart` work from another directory."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
SKIP = shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def run(args: list, cwd: Path, env: dict, timeout: int = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: rc {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_wheel_ships_recipes_and_runs_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # build from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(REPO, source, ignore=SKIP)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", tmp_path / "dist"],
        source, env)
    (wheel,) = (tmp_path / "dist").glob("raykd-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], tmp_path, env)
    python, raykd = venv / "bin" / "python", venv / "bin" / "raykd"
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp_path, env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    where = run([python, "-c", "import raykd.config.recipes as r; print(r.__file__); print(r.recipes_root())"],
                elsewhere, env).split()
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert where == [str(site / "raykd/config/recipes.py"), str(site / "raykd/recipes")]  # the wheel's, not the checkout

    listed = run([raykd, "recipes", "list"], elsewhere, env)
    assert "quickstart" in listed and "distill/rkd-minilm-teacher-shapes" in listed and "sweeps/losses" in listed
    checked = run([raykd, "check", "quickstart"], elsewhere, env)
    assert "quickstart: OK" in checked and "trainable" in checked
    # `defaults:` inheritance inside the package, and a sweep by name
    assert "OK" in run([raykd, "check", "siglip-tiny-shapes"], elsewhere, env)
    assert "trial" in run([raykd, "check", "sweeps/losses"], elsewhere, env)
    run([raykd, "recipes", "copy", "quickstart"], elsewhere, env)
    assert (elsewhere / "quickstart.yaml").read_text() == (REPO / "recipes/quickstart.yaml").read_text()
