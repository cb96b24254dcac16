"""Run work items on Ray actors (:func:`run_parallel`) or one after another in this process (:func:`run_serial`);
both report each result through ``on_result`` as soon as it is in.

The unit an actor runs is a data set's items (``group="dataset"``: the model's features are shared between
them) or a single item (``group="item"``). ``max_actors`` actors are started and each takes the next unit
when it finishes one, so a process that imported torch and loaded the model keeps working; ``None`` starts a
fresh actor per unit (units beyond the cluster's free resources wait for them), killed after it. An actor
is ``raykd.eval.runner.EvalActor`` (it builds the model from a picklable factory and moves it to the GPU Ray
gave it) with one more method. A dead actor fails its unit and is replaced; the others keep their results.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from raykd.eval.elevater.work import ItemResult, WorkItem, failed, run_item
from raykd.eval.features import FeatureCache
from raykd.eval.runner import EvalActor

OnResult = Callable[[ItemResult], None]
GROUPS = ("dataset", "item")


class ElevaterActor(EvalActor):
    def run_items(self, items: list[WorkItem]) -> list[ItemResult]:
        model, cache = self._get_model(), FeatureCache()
        return [run_item(model, item, cache) for item in items]


def run_serial(model: Any, items: Sequence[WorkItem], on_result: OnResult | None = None) -> list[ItemResult]:
    """Each item in turn with one model; image features are shared across items (one cache)."""
    cache, results = FeatureCache(), []
    for item in items:
        results.append(run_item(model, item, cache))
        if on_result is not None:
            on_result(results[-1])
    return results


def group_items(items: Sequence[WorkItem], group: str) -> list[list[int]]:
    """Indices of ``items`` per unit of work: one list per item, or per data set (first-seen order)."""
    if group not in GROUPS:
        raise ValueError(f"unknown actor grouping {group!r}; choose from {GROUPS}")
    if group == "item":
        return [[i] for i in range(len(items))]
    by_dataset: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_dataset.setdefault(item.spec.name, []).append(i)
    return list(by_dataset.values())


def cluster_capacity(num_cpus_per_actor: float, num_gpus_per_actor: float) -> int:
    """How many such actors the current Ray cluster holds at once (at least 1)."""
    import ray

    total = ray.cluster_resources()
    fits = [math.floor(total.get("CPU", 0) / num_cpus_per_actor + 1e-9)] if num_cpus_per_actor > 0 else []
    if num_gpus_per_actor > 0:
        fits.append(math.floor(total.get("GPU", 0) / num_gpus_per_actor + 1e-9))
    return max(1, min(fits) if fits else 1)


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"


def run_parallel(model_factory: Callable[[], Any], items: Sequence[WorkItem], *, group: str = "dataset",
                 max_actors: int | None = None, num_cpus_per_actor: float = 1, num_gpus_per_actor: float = 0,
                 on_result: OnResult | None = None) -> list[ItemResult]:
    """Run ``items`` on actors of the current Ray instance (a local one is started if none is); results
    come back in item order. ``model_factory`` must be picklable (e.g. ``functools.partial(load, path)``)."""
    import ray

    if not ray.is_initialized():
        ray.init()
    units = deque(group_items(items, group))
    remote = ray.remote(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor)(ElevaterActor)
    results: list[ItemResult | None] = [None] * len(items)
    pending: dict[Any, tuple[Any, list[int]]] = {}

    def submit(actor: Any) -> None:
        indices = units.popleft()
        pending[actor.run_items.remote([items[i] for i in indices])] = (actor, indices)

    for _ in range(min(max_actors or len(units), len(units))):
        submit(remote.remote(model_factory))
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, indices = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - RayActorError / RayTaskError: keep the others
                outcome = [failed(items[i], _cause(exc)) for i in indices]
                ray.kill(actor)
                actor = remote.remote(model_factory) if units else None
            for i, result in zip(indices, outcome):
                results[i] = result
                if on_result is not None:
                    on_result(result)
            if actor is not None and units:
                submit(actor)
            elif actor is not None:
                ray.kill(actor)
    finally:
        for actor, _ in pending.values():
            ray.kill(actor)
    return [r for r in results if r is not None]
