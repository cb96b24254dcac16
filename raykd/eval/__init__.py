"""Evaluation: feature extraction (``features``), file readers (``readers``), the data-root layout
(``datasets``), one function per task (``tasks``, a registry), and the runner (``runner``: in-process or one
Ray actor per data set). Metric keys are ``<task>/<dataset>/<metric>`` (``metrics``).

The runner's names are importable from here lazily, so ``import raykd.eval.<submodule>`` stays light.
"""
from __future__ import annotations

_LAZY = {
    "evaluate": "raykd.eval.runner", "evaluate_parallel": "raykd.eval.runner", "WorkItem": "raykd.eval.runner",
    "write_clip_benchmark_json": "raykd.eval.runner", "FeatureCache": "raykd.eval.features",
    "get_task": "raykd.eval.tasks", "list_tasks": "raykd.eval.tasks",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raykd.eval' has no attribute {name!r}")
