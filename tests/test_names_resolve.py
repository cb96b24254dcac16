"""Every module of raykd and every benchmark script imports, and no function uses an undefined global.

The benchmarks take minutes to run (their figures go in the README), and some package code only runs
on a cluster or a GPU, so CI checks what a refactor most often breaks there: a renamed import.
"""
from __future__ import annotations

import builtins
import dis
import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import raykd
from tests.conftest import REPO

BENCHMARKS = sorted(f"benchmarks.{p.stem}" for p in (REPO / "benchmarks").glob("*.py"))
PACKAGE = sorted(m.name for m in pkgutil.walk_packages(raykd.__path__, "raykd.") if not m.name.endswith("__main__"))


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def undefined_globals(module: types.ModuleType) -> set[str]:
    """Global names the module's code loads that neither the module nor builtins define."""
    known = set(vars(module)) | set(dir(builtins))
    top = compile(Path(module.__file__).read_text(), module.__file__, "exec")
    return {ins.argval for code in _code_objects(top) for ins in dis.get_instructions(code)
            if ins.opname == "LOAD_GLOBAL" and ins.argval not in known}


def test_the_lists_are_complete():
    assert {"benchmarks.step_overhead", "benchmarks.data_throughput", "benchmarks.eval_parallel"} <= set(BENCHMARKS)
    assert {"raykd.cli", "raykd.train.trainer", "raykd.eval.elevater.run"} <= set(PACKAGE)


@pytest.mark.parametrize("name", BENCHMARKS + PACKAGE)
def test_names_resolve(name):
    assert undefined_globals(importlib.import_module(name)) == set()


def test_the_check_catches_a_missing_name():
    real = importlib.import_module("benchmarks.eval_parallel")
    broken = types.ModuleType(real.__name__)
    broken.__file__ = real.__file__
    vars(broken).update({k: v for k, v in vars(real).items() if k != "functools"})  # as if its import were gone
    assert undefined_globals(broken) == {"functools"}
