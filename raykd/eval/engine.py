"""The evaluation engine: run work items with a model, in this process (:func:`run_serial`) or on a pool of Ray
actors (:func:`run_pool`), sharing image features through a :class:`FeatureCache`.

A work item is anything with ``unit`` (items of one unit run together on one actor, with one feature cache),
``run(model, cache) -> result`` and ``failed(error) -> result`` (the result of an item that could not run,
``error`` being ``"ExcType: message"``). Two kinds exist: :class:`TaskItem` (evaluation tasks on one data set
of a data root; its result is a flat metrics dict) and ``raykd.eval.elevater.work.WorkItem`` (an ELEVATER data
set x mode x shots x seed; its result is an ``ItemResult``).

The plain task loop is :func:`run_groups` (a plan's (data kind, data set) -> tasks, each data set loaded once,
or taken from data loaded before); :func:`evaluate` plans and runs it. Results are one flat dict
``{"<task>/<dataset>/<metric>": float}``; failures do not stop the others and are reported as
``results["errors"] = {"<task>/<dataset>" or "<dataset>": "ExcType: message"}`` (the ``errors`` key is present
only when something failed).
"""
from __future__ import annotations

import inspect
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from raykd.eval import datasets as ds
from raykd.eval.features import FeatureCache
from raykd.eval.planning import Groups, plan
from raykd.eval.tasks import get_task

ERRORS = "errors"
GROUPS = ("dataset", "item")


def describe(exc: BaseException) -> str:
    """``"ExcType: message"``: how a failure is reported."""
    return f"{type(exc).__name__}: {exc}"


class Item(Protocol):
    unit: str

    def run(self, model: Any, cache: FeatureCache) -> Any: ...

    def failed(self, error: str) -> Any: ...


# ---------------------------------------------------------------------------------------------- tasks on data sets
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


def run_groups(model: Any, groups: Groups, data_root: str | Path, *,
               loaded: Mapping[tuple[str, str], Any] | None = None, only: Iterable[str] | None = None, batch_size: int = 256,
               task_options: Mapping[str, Mapping[str, Any]] | None = None,
               cache: FeatureCache | None = None) -> dict[str, Any]:
    """Run each group's tasks (those in ``only``, when given) on its data set: ``loaded[(kind, name)]``, or
    loaded from ``data_root`` here. A data set that fails to load, or a task that raises, is reported under
    ``errors``; the others run."""
    only = None if only is None else set(only)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for (kind, name), names in groups.items():
        names = [t for t in names if only is None or t in only]
        if not names:
            continue
        try:
            data = loaded[(kind, name)] if loaded is not None else ds.load_dataset(kind, data_root, name)
        except Exception as exc:  # noqa: BLE001 - reported, the other data sets still run
            errors.update({f"{t}/{name}": describe(exc) for t in names})
            continue
        for task in names:
            try:
                results |= run_task(task, model, data, name, cache=cache, batch_size=batch_size,
                                    **dict((task_options or {}).get(task, {})))
            except Exception as exc:  # noqa: BLE001 - reported, the other tasks still run
                errors[f"{task}/{name}"] = describe(exc)
    if errors:
        results[ERRORS] = errors
    return results


def evaluate(model: Any, tasks: Sequence[str], data_root: str | Path, datasets: Sequence[str] | None = None, *,
             batch_size: int = 256, task_options: Mapping[str, Mapping[str, Any]] | None = None,
             cache: FeatureCache | None = None) -> dict[str, Any]:
    """Run ``tasks`` on ``datasets`` (default: all found) under ``data_root``; one flat metrics dict.

    Features are extracted once per data set and shared across tasks through ``cache`` (one per model).
    ``task_options`` maps a task name to extra keyword arguments (e.g. ``{"linear_probe": {"solver":
    "torch"}}``). Raises ValueError for an unknown task; everything else that fails is under ``errors``.
    """
    groups, errors = plan(tasks, data_root, datasets)
    results = run_groups(model, groups, data_root, batch_size=batch_size, task_options=task_options,
                         cache=cache if cache is not None else FeatureCache())
    return merge_results([{ERRORS: errors}, results])


def merge_results(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Flat metrics dicts -> one, their ``errors`` merged (and dropped when empty)."""
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for part in parts:
        part = dict(part)
        errors.update(part.pop(ERRORS, {}))
        results.update(part)
    if errors:
        results[ERRORS] = errors
    return results


@dataclass
class TaskItem:
    """Work item: ``tasks`` on data set ``dataset`` under ``data_root``; its result is a flat metrics dict."""
    dataset: str
    tasks: list[str]
    data_root: str
    batch_size: int = 256
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return self.dataset

    def run(self, model: Any, cache: FeatureCache) -> dict[str, Any]:
        return evaluate(model, self.tasks, self.data_root, [self.dataset], batch_size=self.batch_size,
                        task_options=self.task_options, cache=cache)

    def failed(self, error: str) -> dict[str, Any]:
        return {ERRORS: {self.dataset: error}}


# ---------------------------------------------------------------------------------------------- running items
def load_model(model_factory: Callable[[], Any], gpu_fraction: float = 0.0) -> Any:
    """The factory's model, on the GPU when this process has one (Ray gives an actor its GPU this way). With a
    fraction of a GPU (`0 < gpu_fraction < 1`, several actors on one card), this process's CUDA memory is
    capped at that fraction, so one actor cannot take the memory the others on the card were promised."""
    model = model_factory()
    if torch.cuda.is_available() and hasattr(model, "to"):
        if 0 < gpu_fraction < 1:
            torch.cuda.set_per_process_memory_fraction(gpu_fraction)
        model = model.to(torch.device("cuda"))
    return model


def _run_one(model: Any, item: Item, cache: FeatureCache) -> Any:
    try:
        return item.run(model, cache)
    except Exception as exc:  # noqa: BLE001 - reported with its item; the other items keep their results
        return item.failed(describe(exc))


def run_serial(model: Any, items: Sequence[Item], on_result: Callable[[Any], None] | None = None) -> list[Any]:
    """Each item in turn with one model; image features are shared across items (one cache)."""
    cache, results = FeatureCache(), []
    for item in items:
        results.append(_run_one(model, item, cache))
        if on_result is not None:
            on_result(results[-1])
    return results


class EvalActor:
    """A Ray actor: builds the model once from a picklable factory (on the GPU Ray gave it, if any), then runs
    items with it, one call each; consecutive items of one unit share a feature cache."""

    def __init__(self, model_factory: Callable[[], Any], gpu_fraction: float = 0.0):
        self._factory, self._model, self._gpu_fraction = model_factory, None, gpu_fraction
        self._unit, self._cache = None, FeatureCache()

    def run(self, item: Item, unit: int) -> Any:
        if self._model is None:
            self._model = load_model(self._factory, self._gpu_fraction)
        if unit != self._unit:
            self._unit, self._cache = unit, FeatureCache()
        return _run_one(self._model, item, self._cache)


def group_items(items: Sequence[Item], group: str) -> list[list[int]]:
    """Indices of ``items`` per unit of work: one list per item, or per ``unit`` (data set; first-seen order)."""
    if group not in GROUPS:
        raise ValueError(f"unknown actor grouping {group!r}; choose from {GROUPS}")
    if group == "item":
        return [[i] for i in range(len(items))]
    by_unit: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_unit.setdefault(item.unit, []).append(i)
    return list(by_unit.values())


def cluster_capacity(num_cpus_per_actor: float, num_gpus_per_actor: float) -> int:
    """How many such actors the current Ray cluster holds at once (at least 1)."""
    import ray  # Ray loads for the actor pool only, not for the serial path and training

    total = ray.cluster_resources()
    fits = [math.floor(total.get("CPU", 0) / num_cpus_per_actor + 1e-9)] if num_cpus_per_actor > 0 else []
    if num_gpus_per_actor > 0:
        fits.append(math.floor(total.get("GPU", 0) / num_gpus_per_actor + 1e-9))
    return max(1, min(fits) if fits else 1)


def _cause(exc: BaseException) -> str:
    """The failure of a Ray call: the item's own exception when it raised, else Ray's (first line)."""
    return describe(getattr(exc, "cause", None) or exc).splitlines()[0][:300]


def _actor_lost(exc: BaseException) -> bool:
    """Did the actor's process or node go away (its items may run elsewhere), rather than an item raising?"""
    from ray.exceptions import ObjectLostError, RayActorError, RayTaskError

    return isinstance(exc, (RayActorError, ObjectLostError)) and not isinstance(exc, RayTaskError)


def run_pool(model_factory: Callable[[], Any], items: Sequence[Item], *, group: str = "dataset",
             max_actors: int | None = None, num_cpus_per_actor: float = 1, num_gpus_per_actor: float = 0,
             retries: int = 2, on_result: Callable[[Any], None] | None = None) -> list[Any]:
    """Run ``items`` on a pool of :class:`EvalActor` of the current Ray instance (a local one is started if
    none is); results come back in item order, and go to ``on_result`` as each item finishes.

    A unit is a data set's items (``group="dataset"``) or one item (``"item"``). ``max_actors`` actors
    (default: as many as the cluster holds, :func:`cluster_capacity`) each load the model once and take the
    next unit when they finish one; ``0`` starts a fresh actor per unit (units beyond the free resources wait
    for them). An actor that dies (its node lost, its process killed) is replaced, and the items it had not
    finished run again on another actor, up to ``retries`` times each (then they fail with the cause); an
    item that raises fails alone. Each item's result is kept once: results of a replaced actor are dropped.
    ``model_factory`` must be picklable (e.g. ``functools.partial(checkpoint_model, path)``).
    """
    import ray  # Ray loads for the actor pool only, not for the serial path and training

    if not ray.is_initialized():
        ray.init()
    units = deque((indices, 0) for indices in group_items(items, group))  # (item indices, retries so far)
    if max_actors is None:
        max_actors = cluster_capacity(num_cpus_per_actor, num_gpus_per_actor)
    remote = ray.remote(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor)(EvalActor)
    results: list[Any] = [None] * len(items)
    pending: dict[Any, tuple[Any, int, int]] = {}  # object ref -> (actor, item index, retries so far)
    unit_ids = itertools.count()

    def submit(actor: Any) -> None:
        # One call per item, queued on the actor at once (an actor runs its calls in order): each result
        # arrives as its item finishes, so a lost actor costs only its unfinished items.
        indices, attempt = units.popleft()
        unit = next(unit_ids)
        for i in indices:
            pending[actor.run.remote(items[i], unit)] = (actor, i, attempt)

    def keep(i: int, result: Any) -> None:
        results[i] = result
        if on_result is not None:
            on_result(result)

    def salvage(actor: Any) -> list[int]:
        """Take a lost actor's calls out of ``pending``: keep the results that did arrive, return the other
        items' indices."""
        unfinished = []
        for ref in [r for r, (a, _, _) in pending.items() if a is actor]:
            _, i, _ = pending.pop(ref)
            try:
                if ray.wait([ref], timeout=0)[0]:
                    keep(i, ray.get(ref))
                    continue
            except Exception:  # noqa: BLE001 - lost with its actor: runs again
                pass
            unfinished.append(i)
        return unfinished

    def busy(actor: Any) -> bool:
        return any(a is actor for a, _, _ in pending.values())

    for _ in range(min(max_actors or len(units), len(units))):
        submit(remote.remote(model_factory, num_gpus_per_actor))
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, index, attempt = pending.pop(ref)
            try:
                keep(index, ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - RayActorError / RayTaskError: keep the others
                if not _actor_lost(exc):
                    keep(index, items[index].failed(_cause(exc)))
                else:
                    unfinished = sorted([index] + salvage(actor))  # in item order
                    ray.kill(actor)
                    actor = None
                    if attempt < retries:
                        print(f"evaluation actor lost ({_cause(exc)}): its {len(unfinished)} unfinished item(s) run "
                              f"again on another actor (retry {attempt + 1} of {retries})", flush=True)
                        units.appendleft((unfinished, attempt + 1))
                    else:
                        for i in unfinished:
                            keep(i, items[i].failed(f"{_cause(exc)} (its actor was lost {retries + 1} times)"))
                    if units:  # a replacement takes the lost actor's place (and, retried, its items)
                        submit(remote.remote(model_factory, num_gpus_per_actor))
            if actor is not None and not busy(actor):
                if units and max_actors:
                    submit(actor)
                else:
                    ray.kill(actor)
    finally:
        for actor in {id(a): a for a, _, _ in pending.values()}.values():
            ray.kill(actor)
    return results
