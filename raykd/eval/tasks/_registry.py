"""The evaluation task registry, filled by ``@register_task`` on import of each task module.

A registered task is a plain function ``fn(model, <data fields>, dataset_name, ...) -> dict[str, float]``.
Its registration declares everything the rest of raykd needs to know about it: ``data_kind``, the kind of data
set it reads (see ``raykd.eval.datasets``; the engine passes it the fields of that data set whose names appear
in its signature, plus ``dataset_name``, ``cache`` and ``batch_size`` when it accepts them), its ``modality``
(``raykd eval --tasks image | text``) and its ``aliases`` (other names ``--tasks`` and ``--option`` accept).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

MODALITIES = ("image", "text")

_TASKS: dict[str, Callable] = {}
_ALIASES: dict[str, str] = {}


def register_task(name: str, *, data_kind: str, modality: str = "image", aliases: Sequence[str] = ()):
    """Decorator: register ``fn`` under ``name`` (and ``aliases``), reading data sets of kind ``data_kind``
    (e.g. ``"classification"``) and belonging to the ``modality`` group (``"image"`` or ``"text"``).

    Sets ``fn.task_name``, ``fn.data_kind``, ``fn.modality`` and ``fn.aliases``. Raises ValueError on a
    duplicate name or alias, a name with ``/`` or an unknown modality.
    """
    if "/" in name:
        raise ValueError(f"task names must not contain '/': {name!r}")
    if modality not in MODALITIES:
        raise ValueError(f"task {name!r}: modality must be one of {MODALITIES}, got {modality!r}")

    def wrap(fn: Callable) -> Callable:
        if name in _TASKS and _TASKS[name] is not fn:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name].__module__}")
        for alias in aliases:
            if _ALIASES.get(alias, name) != name or alias in _TASKS:
                raise ValueError(f"task alias {alias!r} of {name!r} is already taken")
        fn.task_name, fn.data_kind, fn.modality, fn.aliases = name, data_kind, modality, tuple(aliases)
        _TASKS[name] = fn
        _ALIASES.update(dict.fromkeys(aliases, name))
        return fn

    return wrap


def canonical_name(name: str) -> str:
    """The task name ``name`` stands for (itself, or the task it is an alias of)."""
    return _ALIASES.get(name, name)


def get_task(name: str) -> Callable:
    """The task function registered as ``name`` (not an alias: see :func:`canonical_name`). Raises ValueError
    (with close matches) if unknown."""
    if name not in _TASKS:
        close = difflib.get_close_matches(name, list(_TASKS), n=3)
        raise ValueError(f"unknown evaluation task {name!r}; did you mean {close}? known: {list_tasks()}")
    return _TASKS[name]


def list_tasks(modality: str | None = None) -> list[str]:
    """Registered task names, sorted; only those of ``modality`` (``"image"`` / ``"text"``) when given."""
    return sorted(n for n, fn in _TASKS.items() if modality is None or fn.modality == modality)
