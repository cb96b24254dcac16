"""Run work items one Ray actor each (:func:`run_parallel`) or one after another in this process
(:func:`run_serial`); both report each result through ``on_result`` as soon as it is in.

An actor is ``raykd.eval.runner.EvalActor`` (it builds the model from a picklable factory and moves it to the
GPU Ray gave it) with one more method. Items beyond the cluster's free resources queue, and each actor is
killed as soon as its result is in. A dead actor becomes a failed item; the others keep their results.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raykd.eval.elevater.work import ItemResult, WorkItem, failed, run_item
from raykd.eval.features import FeatureCache
from raykd.eval.runner import EvalActor

OnResult = Callable[[ItemResult], None]


class ElevaterActor(EvalActor):
    def run_item(self, item: WorkItem) -> ItemResult:
        return run_item(self._get_model(), item)


def run_serial(model: Any, items: Sequence[WorkItem], on_result: OnResult | None = None) -> list[ItemResult]:
    """Each item in turn with one model; image features are shared across items (one cache)."""
    cache, results = FeatureCache(), []
    for item in items:
        results.append(run_item(model, item, cache))
        if on_result is not None:
            on_result(results[-1])
    return results


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"


def run_parallel(model_factory: Callable[[], Any], items: Sequence[WorkItem], *, num_cpus_per_actor: float = 1,
                 num_gpus_per_actor: float = 0, on_result: OnResult | None = None) -> list[ItemResult]:
    """One actor per item on the current Ray instance (started locally if none is); results in item order.

    ``model_factory`` must be picklable (e.g. ``functools.partial(load_checkpoint_model, path)``).
    """
    import ray

    if not ray.is_initialized():
        ray.init()
    remote = ray.remote(num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor)(ElevaterActor)
    pending: dict[Any, tuple[Any, int]] = {}
    for i, item in enumerate(items):
        actor = remote.remote(model_factory)
        pending[actor.run_item.remote(item)] = (actor, i)
    results: list[ItemResult | None] = [None] * len(items)
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, i = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - RayActorError / RayTaskError: keep the others
                results[i] = failed(items[i], _cause(exc))
            ray.kill(actor)
            if on_result is not None:
                on_result(results[i])
    finally:
        for actor, _ in pending.values():
            ray.kill(actor)
    return [r for r in results if r is not None]
