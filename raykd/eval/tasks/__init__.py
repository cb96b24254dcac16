"""Evaluation tasks: one plain function per file, registered by ``@register_task`` on import.

Every module of this package is imported here, so a new task is one file (and its test): ``get_task(name)`` /
``list_tasks()`` see it. Every task returns a flat dict keyed ``<task>/<dataset>/<metric>`` (see
``raykd.eval.metrics``).
"""
import importlib
import pkgutil

from raykd.eval.tasks._registry import canonical_name, get_task, list_tasks, register_task

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")  # importing registers

__all__ = ["canonical_name", "get_task", "list_tasks", "register_task"]
