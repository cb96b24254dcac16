"""What an evaluation runs: task names (groups and aliases from the task registry), task options, the task
sections of a recipe's ``eval``, and the plan of (data kind, data set) -> tasks under a data root.

Shared by ``raykd eval`` (:mod:`raykd.eval.run`) and evaluation during training (``raykd.train.evaluation``).
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raykd.config.loading import parse_override
from raykd.config.schema import EvalConfig
from raykd.eval import datasets as ds
from raykd.eval.tasks import canonical_name, get_task, list_tasks

Groups = dict[tuple[str, str], list[str]]


def resolve_tasks(spec: str) -> list[str]:
    """``all`` | ``image`` | ``text`` | comma-separated names (or aliases such as ``linear``) -> task names.
    Raises ValueError for an unknown name (with close matches)."""
    groups = {"all": list_tasks(), "image": list_tasks("image"), "text": list_tasks("text")}
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        for name in groups.get(item, [canonical_name(item)]):
            get_task(name)
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("--tasks names no task")
    return names


def validate_options(task: str, options: Mapping[str, Any]) -> None:
    """Raises ValueError when task ``task`` takes none of some ``options`` keys (tasks with ``**kwargs``, such as
    ``linear_probe``, pass unknown keys on to their solver and accept anything)."""
    params = inspect.signature(get_task(task)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = sorted(set(params) - {"model", "dataset_name", "cache"})
        raise ValueError(f"task {task!r} takes no option(s) {unknown}; valid: {valid}")


def parse_options(items: list[str], tasks: list[str]) -> dict[str, dict[str, Any]]:
    """``["linear_probe.solver=torch", ...]`` -> ``{"linear_probe": {"solver": "torch"}}`` (values parsed as YAML).
    Raises ValueError for a malformed item, a task not selected, or an option the task does not take."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        path, value = parse_override(item)
        if len(path) != 2:
            raise ValueError(f"--option expects TASK.KEY=VALUE, got {item!r}")
        task, key = canonical_name(path[0]), path[1]
        if task not in tasks:
            raise ValueError(f"--option {item!r}: task {task!r} is not among --tasks {tasks}")
        options.setdefault(task, {})[key] = value
    for task, opts in options.items():
        validate_options(task, opts)
    return options


def check_task_sections(cfg: EvalConfig, options: bool = True) -> None:
    """Raises ValueError naming ``eval.<name>`` for a section that is no registered task (with the closest
    name), and (``options``) ``eval.<name>.options`` for options the task does not take."""
    for name, section in cfg.tasks.items():
        if name not in list_tasks():
            close = difflib.get_close_matches(name, list_tasks(), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"eval.{name}: unknown task{hint} (tasks: {', '.join(list_tasks())})")
        if not options:
            continue
        try:
            validate_options(name, section.options)
        except ValueError as err:
            raise ValueError(f"eval.{name}.options: {err}") from None


def plan(tasks: Sequence[str], data_root: str | Path, datasets: Sequence[str] | None = None
         ) -> tuple[Groups, dict[str, str]]:
    """Group ``tasks`` by (data kind, data set) -> task names, so each data set is loaded once.

    ``datasets=None`` takes every data set present under ``data_root``; requested names no task's kind
    claims, and tasks with nothing to run on, are returned as errors. Raises ValueError for unknown tasks.
    """
    kinds = {t: get_task(t).data_kind for t in tasks}
    groups: Groups = {}
    errors: dict[str, str] = {}
    for task, kind in kinds.items():
        names = ds.find_datasets(kind, data_root) if datasets is None else \
            [n for n in datasets if ds.claims(kind, data_root, n)]
        if datasets is None and not names:
            errors[task] = f"FileNotFoundError: no {kind} data set for task {task!r} under {data_root}"
        for name in names:
            groups.setdefault((kind, name), []).append(task)
    for name in datasets or []:
        if not any(n == name for _, n in groups):
            errors[name] = f"FileNotFoundError: no data set {name!r} for tasks {list(tasks)} under {data_root}"
    return groups, errors


def skipped_tasks(tasks: Sequence[str], groups: Mapping[tuple[str, str], list[str]], data_root: str | Path,
                  datasets: Sequence[str] | None = None) -> dict[str, str]:
    """``{task: reason}`` for the ``tasks`` that :func:`plan` found no data set for (``groups`` is its plan)."""
    planned = {t for names in groups.values() for t in names}
    among = "" if datasets is None else f" among {list(datasets)}"
    return {t: f"no {get_task(t).data_kind} data set{among} under {data_root} (layout: raykd.eval.datasets)"
            for t in tasks if t not in planned}


def plan_or_fail(tasks: Sequence[str], data_root: str | Path, datasets: Sequence[str] | None, flag: str
                 ) -> tuple[Groups, dict[str, str]]:
    """:func:`plan`, then its ``{task: reason}`` skips; raises ValueError (``<flag>: no data set [...]``) for
    requested ``datasets`` that no task reads."""
    groups, _ = plan(tasks, data_root, datasets)
    unclaimed = [n for n in datasets or [] if not any(name == n for _, name in groups)]
    if unclaimed:
        raise ValueError(f"{flag}: no data set {unclaimed} under {data_root} for tasks {list(tasks)}")
    return groups, skipped_tasks(tasks, groups, data_root, datasets)
