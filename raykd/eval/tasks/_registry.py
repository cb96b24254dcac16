"""The evaluation task registry, filled by ``@register_task`` on import of each task module.

A registered task is a plain function ``fn(model, <data fields>, dataset_name, ...) -> dict[str, float]``.
``data`` names the kind of data set it reads (see ``raykd.eval.datasets``); the runner passes it the fields
of that data set whose names appear in its signature, plus ``dataset_name``, ``cache`` and ``batch_size``
when it accepts them.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable

_TASKS: dict[str, Callable] = {}


def register_task(name: str, *, data: str):
    """Decorator: register ``fn`` under ``name``; ``data`` is its data kind (e.g. ``"classification"``).

    Sets ``fn.task_name`` and ``fn.data_kind``. Raises ValueError on a duplicate name.
    """
    if "/" in name:
        raise ValueError(f"task names must not contain '/': {name!r}")

    def wrap(fn: Callable) -> Callable:
        if name in _TASKS and _TASKS[name] is not fn:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name].__module__}")
        fn.task_name, fn.data_kind = name, data
        _TASKS[name] = fn
        return fn

    return wrap


def get_task(name: str) -> Callable:
    """The task function registered as ``name``. Raises ValueError (with close matches) if unknown."""
    if name not in _TASKS:
        close = difflib.get_close_matches(name, list(_TASKS), n=3)
        raise ValueError(f"unknown evaluation task {name!r}; did you mean {close}? known: {list_tasks()}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_TASKS)
