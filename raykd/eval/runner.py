"""Run evaluation tasks over data sets: in-process (:func:`evaluate`) or one Ray actor per data set
(:func:`evaluate_parallel`), and write CLIP-benchmark style JSON files.

Data sets are located under ``data_root`` by the convention documented in :mod:`raykd.eval.datasets`.
Results are one flat dict ``{"<task>/<dataset>/<metric>": float}``; failures do not stop the others and
are reported as ``results["errors"] = {"<task>/<dataset>" or "<dataset>": "ExcType: message"}`` (the
``errors`` key is present only when something failed).
"""
from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from raykd.eval import datasets as ds
from raykd.eval.features import FeatureCache
from raykd.eval.metrics import split_key
from raykd.eval.tasks import get_task

ERRORS = "errors"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_task(name: str, model: Any, data: Any, dataset_name: str, *, cache: FeatureCache | None = None,
             batch_size: int | None = None, **options: Any) -> dict[str, float]:
    """Call task ``name`` on a loaded data set: the task receives the data's fields that its signature
    names, ``dataset_name``, and ``cache`` / ``batch_size`` when it accepts them, plus ``options``."""
    fn = get_task(name)
    params = inspect.signature(fn).parameters
    kwargs = {f.name: getattr(data, f.name) for f in fields(data) if f.name in params} if is_dataclass(data) else {}
    for key, value in (("cache", cache), ("batch_size", batch_size)):
        if value is not None and key in params:
            kwargs[key] = value
    return fn(model, dataset_name=dataset_name, **kwargs, **options)


def plan(tasks: Sequence[str], data_root: str | Path, datasets: Sequence[str] | None = None
         ) -> tuple[dict[tuple[str, str], list[str]], dict[str, str]]:
    """Group ``tasks`` by (data kind, data set) -> task names, so each data set is loaded once.

    ``datasets=None`` takes every data set present under ``data_root``; requested names no task's kind
    claims, and tasks with nothing to run on, are returned as errors. Raises ValueError for unknown tasks.
    """
    kinds = {t: get_task(t).data_kind for t in tasks}
    groups: dict[tuple[str, str], list[str]] = {}
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


def skipped_tasks(tasks: Sequence[str], groups: Mapping[tuple[str, str], list[str]], data_root: str | Path,
                  datasets: Sequence[str] | None = None) -> dict[str, str]:
    """``{task: reason}`` for the ``tasks`` that :func:`plan` found no data set for (``groups`` is its plan)."""
    planned = {t for names in groups.values() for t in names}
    among = "" if datasets is None else f" among {list(datasets)}"
    return {t: f"no {get_task(t).data_kind} data set{among} under {data_root} (layout: raykd.eval.datasets)"
            for t in tasks if t not in planned}


def evaluate(model: Any, tasks: Sequence[str], data_root: str | Path, datasets: Sequence[str] | None = None, *,
             batch_size: int = 256, task_options: Mapping[str, Mapping[str, Any]] | None = None,
             cache: FeatureCache | None = None) -> dict[str, Any]:
    """Run ``tasks`` on ``datasets`` (default: all found) under ``data_root``; one flat metrics dict.

    Features are extracted once per data set and shared across tasks through ``cache`` (one per model).
    ``task_options`` maps a task name to extra keyword arguments (e.g. ``{"linear_probe": {"solver":
    "torch"}}``). A data set that fails to load or a task that raises is reported under ``errors``.
    """
    groups, errors = plan(tasks, data_root, datasets)
    cache = cache if cache is not None else FeatureCache()
    results: dict[str, Any] = {}
    for (kind, name), names in groups.items():
        try:
            data = ds.load_dataset(kind, data_root, name)
        except Exception as exc:  # noqa: BLE001 - reported, the other data sets still run
            errors.update({f"{t}/{name}": _describe(exc) for t in names})
            continue
        for task in names:
            try:
                results |= run_task(task, model, data, name, cache=cache, batch_size=batch_size,
                                    **dict((task_options or {}).get(task, {})))
            except Exception as exc:  # noqa: BLE001
                errors[f"{task}/{name}"] = _describe(exc)
    if errors:
        results[ERRORS] = errors
    return results


# ---------------------------------------------------------------------------------------------- Ray fan-out
@dataclass
class WorkItem:
    """One actor's work: ``tasks`` on ``dataset`` under ``data_root``."""
    dataset: str
    tasks: list[str]
    data_root: str
    batch_size: int = 256
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)


class EvalActor:
    """Builds the model from a picklable factory (first call) and evaluates work items with it."""

    def __init__(self, model_factory: Callable[[], Any]):
        self._factory, self._model = model_factory, None

    def _get_model(self) -> Any:
        if self._model is None:
            model = self._factory()
            if torch.cuda.is_available() and hasattr(model, "to"):
                model = model.to(torch.device("cuda"))
            self._model = model
        return self._model

    def run(self, item: WorkItem) -> dict[str, Any]:
        return evaluate(self._get_model(), item.tasks, item.data_root, [item.dataset],
                        batch_size=item.batch_size, task_options=item.task_options)


def _merge(results: dict[str, Any], part: Mapping[str, Any]) -> None:
    part = dict(part)
    results.setdefault(ERRORS, {}).update(part.pop(ERRORS, {}))
    results.update(part)


def evaluate_parallel(model_factory: Callable[[], Any], work_items: Sequence[WorkItem | Mapping[str, Any]], *,
                      num_cpus_per_actor: float = 1, num_gpus_per_actor: float = 0) -> dict[str, Any]:
    """One Ray actor per work item (data set); the model is built inside each actor by ``model_factory``
    (picklable: a function, a ``functools.partial`` over a checkpoint path, ...) and moved to the GPU when
    Ray gave it one. Uses the current Ray instance (or starts a local one); items beyond the cluster's
    capacity queue and start as earlier actors finish (each actor is killed once its result is in).
    A failed actor is reported as ``errors[<dataset>]``; the other data sets' metrics are kept."""
    import ray

    items = [w if isinstance(w, WorkItem) else WorkItem(**w) for w in work_items]
    remote_actor = ray.remote(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor)(EvalActor)
    pending = {}
    for item in items:
        actor = remote_actor.remote(model_factory)
        pending[actor.run.remote(item)] = (actor, item)
    results: dict[str, Any] = {}
    try:
        while pending:
            # Actors beyond the cluster's capacity wait for resources: free each as soon as it is done.
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, item = pending.pop(ref)
            try:
                _merge(results, ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - RayTaskError / RayActorError: keep the others
                cause = getattr(exc, "cause", None)
                results.setdefault(ERRORS, {})[item.dataset] = _describe(cause) if cause else _describe(exc)
            ray.kill(actor)
    finally:
        for actor, _ in pending.values():
            ray.kill(actor)
    if not results.get(ERRORS):
        results.pop(ERRORS, None)
    return results


# ---------------------------------------------------------------------------------------------- output
# Our task / metric names -> CLIP_benchmark's, so its result tooling reads the files.
_CLIP_BENCHMARK_TASKS = {"zeroshot": "zeroshot_classification", "retrieval": "zeroshot_retrieval"}
_CLIP_BENCHMARK_METRICS = [
    (r"^top(\d+)$", r"acc\1"),
    (r"^image_to_text_R@(\d+)$", r"text_retrieval_recall@\1"),
    (r"^text_to_image_R@(\d+)$", r"image_retrieval_recall@\1"),
]


def _clip_benchmark_metric(task: str, metric: str) -> str:
    if task not in _CLIP_BENCHMARK_TASKS:
        return metric
    for pattern, repl in _CLIP_BENCHMARK_METRICS:
        metric = re.sub(pattern, repl, metric)
    return metric


def write_clip_benchmark_json(results: Mapping[str, Any], out_dir: str | Path, model_name: str) -> list[Path]:
    """One ``<out_dir>/<dataset>_<model>_<task>.json`` per (data set, task) with
    ``{"dataset", "model", "task", "metrics"}`` (CLIP_benchmark's layout; ``zeroshot`` and ``retrieval``
    use its task and metric names). The ``errors`` entry is skipped. Returns the written paths."""
    grouped: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in results.items():
        if key == ERRORS:
            continue
        task, dataset, metric = split_key(key)
        grouped.setdefault((task, dataset), {})[_clip_benchmark_metric(task, metric)] = value
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe_model = re.sub(r"[^\w.-]+", "_", model_name)
    paths = []
    for (task, dataset), metrics in grouped.items():
        name = _CLIP_BENCHMARK_TASKS.get(task, task)
        path = out_dir / f"{dataset}_{safe_model}_{name}.json"
        path.write_text(json.dumps({"dataset": dataset, "model": model_name, "task": name, "metrics": metrics},
                                   indent=2) + "\n")
        paths.append(path)
    return paths
