"""The data state of one training run: the epoch its pipeline is reading and the samples it skipped.

Both live in one named, detached Ray actor `raykd-skips-<name>` (namespace `raykd`, 0 CPUs, created on
first use), so the driver, Ray Data's read tasks and the train workers of a run share them:
  * the train workers announce the epoch they are about to read (`set_epoch`), and the pipeline's
    datasource (`raykd.data.pipeline`) plans that epoch's samples from it (`epoch`);
  * the read tasks add the samples they skipped (`add_skips`: {shard url: {reason: n}}), and the workers
    report the totals (`skip_metrics`).
Outside Ray (the plain DataLoader path) skips go to a process-local table (`add_local_skips`), which
`skipped` reads too. Lifecycle: the trainer `reset`s it when a run starts and `close`s it when the run
ends (the actor is detached: one left per run would accumulate); sweeps do the same per trial.

    state = DataRunState("default")
    state.skipped()   # {"/data/shard-000003.tar": {"bad_image": 2}, ...}
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray

NAMESPACE = "raykd"
_LOCAL: dict[str, dict[str, dict[str, int]]] = {}


def _merge(into: dict, counts: dict[str, dict[str, int]]) -> None:
    for url, reasons in counts.items():
        per_url = into.setdefault(url, {})
        for reason, n in reasons.items():
            per_url[reason] = per_url.get(reason, 0) + n


@ray.remote(num_cpus=0, max_concurrency=1)
class _RunStateActor:
    """The table {shard url: {reason: count}} of one run, and the epoch its pipeline reads."""

    def __init__(self):
        self.counts: dict[str, dict[str, int]] = {}
        self.epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def get_epoch(self) -> int | None:
        return self.epoch

    def add(self, counts: dict[str, dict[str, int]]) -> None:
        _merge(self.counts, counts)

    def get(self) -> dict[str, dict[str, int]]:
        return self.counts

    def reset(self) -> None:
        self.counts, self.epoch = {}, None


@dataclass(frozen=True)
class DataRunState:
    """Handle of run `name`'s data state (picklable: Ray Data tasks and train workers get a copy)."""

    name: str = "default"

    @classmethod
    def for_run(cls, run_name: str, run_dir: str | Path) -> "DataRunState":
        """The state of the run `run_name` in `run_dir` (a sweep's trials each have their own directory)."""
        return cls(f"{run_name}-{Path(run_dir).name}")

    @property
    def _actor_name(self) -> str:
        return f"raykd-skips-{self.name}"

    def _actor(self):
        """The named detached actor (created if missing). Needs Ray initialised."""
        return _RunStateActor.options(name=self._actor_name, namespace=NAMESPACE, lifetime="detached",
                                      get_if_exists=True).remote()

    def set_epoch(self, epoch: int) -> None:
        """Announce that the next pass of the pipeline is epoch `epoch` (blocks until recorded)."""
        ray.get(self._actor().set_epoch.remote(int(epoch)))

    def epoch(self) -> int | None:
        """The epoch last announced (None: never, or reset)."""
        return ray.get(self._actor().get_epoch.remote())

    def add_skips(self, counts: dict[str, dict[str, int]]) -> None:
        """Add `counts` (blocking until recorded, so a later read sees them); the local table without Ray."""
        if not counts:
            return
        if ray.is_initialized():
            ray.get(self._actor().add.remote(counts))
        else:
            self.add_local_skips(counts)

    def add_local_skips(self, counts: dict[str, dict[str, int]]) -> None:
        """Add `counts` to this process's table only (for code that must not call Ray, e.g. DataLoader workers)."""
        _merge(_LOCAL.setdefault(self.name, {}), counts)

    def skipped(self) -> dict[str, dict[str, int]]:
        """{shard url: {reason: n}} (the actor's table, if Ray is up, plus this process's local table);
        reasons are those of `raykd.data.samples.REASONS`."""
        counts: dict[str, dict[str, int]] = {}
        if ray.is_initialized():
            _merge(counts, ray.get(self._actor().get.remote()))
        _merge(counts, _LOCAL.get(self.name, {}))
        return counts

    def skip_metrics(self) -> dict[str, int]:
        """Flat `data/skipped` and `data/skipped/<reason>` totals, as the run reports them."""
        totals: dict[str, int] = {}
        for reasons in self.skipped().values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        return {"data/skipped": sum(totals.values()), **{f"data/skipped/{r}": n for r, n in totals.items()}}

    def reset(self) -> None:
        """Clear the counts and the epoch (a run starts)."""
        if ray.is_initialized():
            ray.get(self._actor().reset.remote())
        _LOCAL.pop(self.name, None)

    def close(self) -> None:
        """Kill the detached actor once the run is over (no-op if it never existed)."""
        if not ray.is_initialized():  # the run failed before Ray started: there is no actor, and
            return  # `ray.get_actor` would start a default Ray instance just to look
        try:
            ray.kill(ray.get_actor(self._actor_name, namespace=NAMESPACE))
        except ValueError:
            pass  # never created, or already gone
