"""What ``raykd eval`` runs (:mod:`raykd.cli.eval` parses the arguments): a model on every task and data set
found, in this process or on the evaluation engine's Ray actor pool (:mod:`raykd.eval.engine`). The model is a
checkpoint's, a recipe's (its pretrained or random weights, no training) or a spec's (``--model``), built through
:class:`raykd.models.sources.ModelSource`; a one-tower model runs the tasks of its modality only.

Data: ``--data-root`` (layout: :mod:`raykd.eval.datasets`); without it, the built-in cache (the checkpoint's
``data.builtin_root`` or ``$RAYKD_CACHE/builtin``) with the evaluation views of ``shapes`` and ``digits``
(:mod:`raykd.eval.builtin`), so every image task runs out of the box. Tasks with no data are reported as
skipped, with the reason.

Writes ``<out>/results.json`` (``{"checkpoint", "source", "random_weights", "weights", "step", "epoch", "model",
"data_root", "device", "tasks", "datasets", "wall_s", "metrics", "skipped", "errors"}``; ``checkpoint``, ``step``
and ``epoch`` are null for a recipe or spec, whose ``model`` is the source's label); ``<out>`` defaults to
``<run-dir>/eval/step-<step>``, ``<checkpoint>/eval`` or ``runs/eval-<model>-<time>``. With ``--run-dir`` it also
appends ``{"step", "epoch", "metrics"}`` to the run's ``results.jsonl``, as training does. ``--clip-benchmark``
writes one CLIP_benchmark-style JSON per (data set, task) (:mod:`raykd.eval.results`). Prints progress (stderr) and a
table (stdout). Exit status 0, or 1 when a task failed; user errors raise ValueError / FileNotFoundError
(``raykd.cli`` prints them and exits 2).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from raykd.data.builtin import list_builtin
from raykd.eval.builtin import prepare_data_root
from raykd.eval.engine import ERRORS, TaskItem, cluster_capacity, merge_results, run_groups, run_pool
from raykd.eval.features import FeatureCache
from raykd.eval.planning import Groups, parse_options, plan_or_fail, resolve_tasks
from raykd.eval.results import format_table, write_eval_outputs
from raykd.eval.tasks import get_task
from raykd.models.checkpoint import checkpoint_info, find_checkpoint
from raykd.models.sources import ARTICLE, ModelSource, source_from_args


def pick_device(spec: str) -> torch.device:
    """``auto`` (cuda when available) | ``cpu`` | ``cuda[:i]``. Raises ValueError for CUDA without a GPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine")
    return device


def resolve_data_root(data_root: str, builtin_root: str, datasets: list[str] | None) -> Path:
    """``data_root``, or the built-in cache (``builtin_root`` or the default); the built-in evaluation views
    of ``datasets`` (default: every built-in set) are written where they are wanted."""
    names = [n for n in datasets if n in list_builtin()] if datasets else None  # None: every built-in set
    return prepare_data_root(data_root or None, builtin_root=builtin_root or None, names=names)


@contextlib.contextmanager
def cpu_threads(n: int):
    """At most ``n`` torch intra-op and BLAS/OpenMP threads inside the block (``n`` = 0: unchanged). On a
    busy machine fewer threads avoid spin-wait stalls (scikit-learn fits were seen 25x slower with 2)."""
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _progress(message: str) -> None:
    print(f"[raykd eval] {message}", file=sys.stderr, flush=True)


def run_local(model: Any, groups: Groups, root: Path, options: dict, batch_size: int) -> dict[str, Any]:
    """Each (data kind, data set) group in turn, one feature cache for all; a progress line per group."""
    parts = []
    cache = FeatureCache()
    for i, (key, tasks) in enumerate(groups.items(), start=1):
        kind, name = key
        start = time.perf_counter()
        _progress(f"({i}/{len(groups)}) {name} [{kind}]: {', '.join(tasks)} ...")
        parts.append(run_groups(model, {key: tasks}, root, batch_size=batch_size, task_options=options, cache=cache))
        failed = [k for k in merge_results(parts).get(ERRORS, {}) if k.endswith(f"/{name}")]
        _progress(f"({i}/{len(groups)}) {name}: done in {time.perf_counter() - start:.1f} s"
                  + (f", failed: {', '.join(failed)}" if failed else ""))
    return merge_results(parts)


def run_ray(source: ModelSource, groups: Groups, root: Path, options: dict, batch_size: int) -> dict[str, Any]:
    """A data set's tasks per work item, on the engine's actor pool: as many actors as the cluster holds, each
    loading the model once and taking the next data set when done."""
    import ray  # Ray loads only for --ray

    if not ray.is_initialized():
        ray.init() if os.environ.get("RAY_ADDRESS") else ray.init(include_dashboard=False)
    by_name: dict[str, list[str]] = {}
    for (_, name), tasks in groups.items():
        by_name.setdefault(name, []).extend(t for t in tasks if t not in by_name.get(name, []))
    items = [TaskItem(name, tasks, str(root), batch_size, {t: options.get(t, {}) for t in tasks})
             for name, tasks in by_name.items()]
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    actors = min(cluster_capacity(1, gpus), len(items))
    _progress(f"{len(items)} data sets on {actors} Ray actors ({'1 GPU' if gpus else 'CPU'} each): "
              f"{', '.join(by_name)}")
    start = time.perf_counter()
    results = merge_results(run_pool(source, items, max_actors=actors, num_gpus_per_actor=gpus))
    _progress(f"Ray evaluation done in {time.perf_counter() - start:.1f} s")
    return results


def fit_tasks(tasks: list[str], spec: str, modalities: tuple[str, ...], label: str) -> tuple[list[str], dict]:
    """(the tasks a model with towers ``modalities`` can run, ``{task: reason}`` for the others). Under ``--tasks``
    ``all`` the others are skipped; named ones raise ValueError naming the task and the tower it needs."""
    missing = {t: get_task(t).modality for t in tasks if get_task(t).modality not in modalities}
    has = " and ".join(modalities)
    named = [t for t in missing if spec.strip() != "all"]
    if named:
        raise ValueError(f"--tasks {named[0]}: needs a model with {ARTICLE[missing[named[0]]]} tower, and {label} "
                         f"has only {has}: choose --tasks {' or '.join(modalities)}")
    reasons = {t: f"needs {ARTICLE[m]} tower; {label} has only {has}" for t, m in missing.items()}
    return [t for t in tasks if t not in missing], reasons


def _step_epoch_config(source: ModelSource) -> tuple[int | None, int | None, Any]:
    """(step, epoch, Config or None) of a checkpoint; (None, None, the recipe's Config or None) otherwise."""
    if source.checkpoint:
        return checkpoint_info(find_checkpoint(source.checkpoint))
    return None, None, source.config()


def run_eval(args: argparse.Namespace) -> int:
    """Run the parsed ``raykd eval`` arguments; write and print the results. Returns the exit status."""
    source = source_from_args(args)
    tasks, unfit = fit_tasks(resolve_tasks(args.tasks), args.tasks, source.modalities, source.label)
    options = parse_options(args.option, tasks)
    datasets = [s.strip() for s in args.datasets.split(",") if s.strip()] or None
    device = pick_device(args.device)
    step, epoch, cfg = _step_epoch_config(source)
    start = time.perf_counter()
    root = resolve_data_root(args.data_root, cfg.data.builtin_root if cfg else "", datasets)
    groups, skipped = plan_or_fail(tasks, root, datasets, "--datasets")
    skipped |= unfit
    where = f"{source.label} (step {step}, epoch {epoch})" if source.checkpoint else source.label
    _progress(f"{where} on {device}; data root {root}")
    if source.warning():
        _progress(source.warning())
    if args.ray:
        results = run_ray(source, groups, root, options, args.batch_size)
    else:
        with cpu_threads(args.threads):
            results = run_local(source().to(device), groups, root, options, args.batch_size)
    errors = results.pop(ERRORS, {})
    model_name = args.model_name or (f"{cfg.run.name}-step{step}" if source.checkpoint else source.label)
    checkpoint_dir = find_checkpoint(source.checkpoint) if source.checkpoint else None
    record = {"checkpoint": str(checkpoint_dir) if checkpoint_dir else None, "source": source.label,
              "random_weights": source.random_parts(), "weights": args.weights, "step": step, "epoch": epoch,
              "model": model_name, "data_root": str(root), "device": str(device) if not args.ray else "ray",
              "tasks": tasks, "datasets": datasets, "wall_s": round(time.perf_counter() - start, 1),
              "metrics": dict(sorted(results.items())), "skipped": skipped, "errors": errors}
    run_dir = Path(args.run_dir) if args.run_dir else None
    out = Path(args.out) if args.out else default_out(source, run_dir, step)
    clip_dir = None if args.clip_benchmark is None else Path(args.clip_benchmark or out / "clip_benchmark")
    write_eval_outputs(record, out, run_dir, clip_dir, model_name, progress=_progress)
    print(format_table(record["metrics"], skipped, errors))
    return 1 if errors else 0


def default_out(source: ModelSource, run_dir: Path | None, step: int | None) -> Path:
    """``<run-dir>/eval/step-<step>``, ``<checkpoint>/eval``, or ``runs/eval-<model>-<time>`` (recipe, spec)."""
    if run_dir is not None:
        return run_dir / "eval" / f"step-{step}"
    if source.checkpoint:
        return find_checkpoint(source.checkpoint) / "eval"
    return Path("runs") / f"eval-{source.slug}-{time.strftime('%Y%m%d-%H%M%S')}"
