"""Evaluation during training: the tasks of ``cfg.eval`` that are due at an epoch end, on rank 0.

Schedule: task ``t`` runs after epoch ``e`` (0-based) when ``eval.t.every_n_epochs = n > 0`` and
``(e + 1) % n == 0`` or ``e`` is the last epoch (as open_clip does), unless ``eval.during_training`` is false.
With ``eval.before_training`` the loop also evaluates at step 0 as "epoch -1", when every enabled task is due.
The ``eval.<task>`` section names and options are checked against the task registry
(:func:`raykd.eval.planning.check_task_sections`).

Data: ``eval.data_root`` (the layout of :mod:`raykd.eval.datasets`), or by default the evaluation view of the
built-in training set (:mod:`raykd.eval.builtin`: its held-out split for zero-shot / clustering / retrieval /
feature analysis, plus a training split for linear probe / k-NN). ``eval.datasets`` picks names (default:
``data.builtin``, or everything under ``eval.data_root``). Tasks with no data (e.g. STS on the built-in sets)
are announced once as skipped, with the reason.

Where it runs: inside the rank-0 training worker, on its device, between an epoch's last step and the
epoch-end report. The other workers wait at that report (a Ray Train synchronisation point), so evaluation
costs every worker its wall time; it is kept short by loading each data set once at start-up rather than per
epoch (planned by :func:`raykd.eval.planning.plan_or_fail`, as ``raykd eval`` plans), running only the tasks
due through the evaluation engine's loop (:func:`raykd.eval.engine.run_groups`), and encoding each data set once
per evaluation for all its tasks (a ``FeatureCache``). A separate Ray task was not chosen: it would need its own
copy of the model (and GPU), its results would arrive after the report they belong to, and on a small CPU
machine it competes with training for the same cores. For heavy suites, evaluate saved checkpoints with ``raykd eval`` (``--ray`` runs data sets
on a pool of actors). A failing task is printed and skipped; training goes on.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from threadpoolctl import threadpool_limits

from raykd.config.schema import Config
from raykd.data.builtin import list_builtin
from raykd.eval import datasets as ds
from raykd.eval.builtin import prepare_data_root
from raykd.eval.engine import ERRORS, run_groups
from raykd.eval.features import FeatureCache
from raykd.eval.planning import Groups, check_task_sections, plan_or_fail


def task_schedule(cfg: Config) -> dict[str, int]:
    """``{task: every_n_epochs}`` of the tasks enabled during training. Raises ValueError for a task section the
    registry does not know, or (when evaluating during training) options a task does not accept."""
    check_task_sections(cfg.eval, options=cfg.eval.during_training)
    if not cfg.eval.during_training:
        return {}
    return {name: section.every_n_epochs for name, section in cfg.eval.tasks.items() if section.every_n_epochs}


def is_due(every: int, epoch: int, epochs: int) -> bool:
    """Whether a task run every ``every`` epochs is due after ``epoch`` (0-based) of ``epochs``; every task is
    due at ``epoch`` -1 (before training)."""
    return every > 0 and ((epoch + 1) % every == 0 or epoch + 1 == epochs)


def eval_data(cfg: Config) -> tuple[Optional[Path], Optional[list[str]]]:
    """(data root, data set names or None for all present); (None, None) when there is nothing to evaluate
    on (no ``eval.data_root`` and no built-in training set). Writes the built-in evaluation view if needed."""
    datasets = list(cfg.eval.datasets) or None
    if cfg.eval.data_root:
        names = [n for n in datasets if n in list_builtin()] if datasets else None
        return prepare_data_root(cfg.eval.data_root, names=names), datasets
    if not cfg.data.builtin:
        return None, None
    names = [n for n in (datasets or [cfg.data.builtin]) if n in list_builtin()]
    root = prepare_data_root(None, builtin_root=cfg.data.builtin_root or None, names=names)
    return root, datasets or [cfg.data.builtin]


def epoch_evaluator(cfg: Config) -> Optional[Callable[[Any, int], dict]]:
    """A function ``(model, epoch) -> {"<task>/<dataset>/<metric>": float}`` for the end of ``epoch``, or
    None when no task is enabled or there is no data. Loads the data sets once, here.

    Raises ValueError for a bad ``eval`` section or requested data sets that no enabled task reads, and
    FileNotFoundError (naming the path) for a data set that is missing or incomplete.
    """
    schedule = task_schedule(cfg)
    if not schedule:
        return None
    root, datasets = eval_data(cfg)
    if root is None:
        print("[raykd] eval: nothing to evaluate on during training (data.builtin is '' and eval.data_root is "
              "unset); use `raykd eval` on checkpoints", flush=True)
        return None
    groups, skipped = plan_or_fail(list(schedule), root, datasets, "eval.datasets")
    for task, reason in skipped.items():
        print(f"[raykd] eval: {task} skipped: {reason}", flush=True)
        del schedule[task]
    loaded = {key: ds.load_dataset(key[0], root, key[1]) for key in groups}
    options = {t: dict(cfg.eval.task(t).options) for t in schedule}

    def evaluate(model, epoch: int) -> dict:
        due = {t for t, every in schedule.items() if is_due(every, epoch, cfg.train.epochs)}
        return _run_due(model, epoch, due, groups, root, loaded, options, cfg.eval.batch_size)

    return evaluate


def _run_due(model, epoch: int, due: set[str], groups: Groups, root: Path, loaded: dict, options: dict,
             batch_size: int) -> dict:
    if not due:
        return {}
    start, cache = time.perf_counter(), FeatureCache()  # one cache per evaluation: the weights change
    # scikit-learn's BLAS would otherwise start a thread per core, beside the idle workers' own threads
    with threadpool_limits(torch.get_num_threads()):
        metrics = run_groups(model, groups, root, loaded=loaded, only=due, batch_size=batch_size,
                             task_options=options, cache=cache)
    for key, error in metrics.pop(ERRORS, {}).items():  # one failed metric must not end the training run
        print(f"[raykd] eval: {key} failed after epoch {epoch}: {error}", flush=True)
    when = "before training" if epoch < 0 else f"after epoch {epoch}"
    print(f"[raykd] eval {when}: {', '.join(sorted(due))} in {time.perf_counter() - start:.1f} s", flush=True)
    return metrics
