"""Counts of skipped samples per shard URL and reason, readable from the driver and the train workers.

Inside Ray (driver, Ray Data tasks, Ray Train workers) the counts live in a named, detached actor
`raykd-skips-<name>` in namespace `raykd` (0 CPUs, created on first use), so every process of a run
adds to and reads the same table. Outside Ray (the plain DataLoader path) they live in a
process-local table (`skipped_counts` reads both). Counts are cumulative over epochs until `reset_skipped_counts(name)`.

    counts = skipped_counts("default")   # {"/data/shard-000003.tar": {"bad_image": 2}, ...}

The same actor holds the run's data epoch: train workers `set_data_epoch(name, e)` before reading
epoch e, and the pipeline's datasource (`raykd.data.pipeline`) plans epoch e's samples from it.
"""
from __future__ import annotations

import ray

NAMESPACE = "raykd"
_LOCAL: dict[str, dict[str, dict[str, int]]] = {}


def _merge(into: dict, counts: dict[str, dict[str, int]]) -> None:
    for url, reasons in counts.items():
        per_url = into.setdefault(url, {})
        for reason, n in reasons.items():
            per_url[reason] = per_url.get(reason, 0) + n


@ray.remote(num_cpus=0, max_concurrency=1)
class SkipCounter:
    """The table {shard url: {reason: count}} of one named counter, and the run's data epoch."""

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


def skip_counter(name: str = "default"):
    """Handle of the named detached `SkipCounter` actor (created if missing). Needs Ray initialised."""
    return SkipCounter.options(
        name=f"raykd-skips-{name}", namespace=NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote()


def drop_skip_counter(name: str) -> None:
    """Kill the detached actor of counter `name` once its run is over (no-op if it never existed)."""
    if not ray.is_initialized():  # the run failed before Ray started: there is no actor, and
        return  # `ray.get_actor` would start a default Ray instance just to look
    try:
        ray.kill(ray.get_actor(f"raykd-skips-{name}", namespace=NAMESPACE))
    except ValueError:
        pass  # never created, or already gone


def report_skips(counts: dict[str, dict[str, int]], name: str = "default") -> None:
    """Add `counts` to counter `name` (blocking until recorded, so a later read sees them)."""
    if not counts:
        return
    if ray.is_initialized():
        ray.get(skip_counter(name).add.remote(counts))
    else:
        report_local_skips(counts, name)


def report_local_skips(counts: dict[str, dict[str, int]], name: str = "default") -> None:
    """Add `counts` to this process's table only (for code that must not call Ray, e.g. DataLoader workers)."""
    _merge(_LOCAL.setdefault(name, {}), counts)


def skipped_counts(name: str = "default") -> dict[str, dict[str, int]]:
    """{shard url: {reason: n}} of counter `name` (the Ray actor's table, if Ray is up, plus this
    process's local table); reasons are those of `raykd.data.samples.REASONS`."""
    counts: dict[str, dict[str, int]] = {}
    if ray.is_initialized():
        _merge(counts, ray.get(skip_counter(name).get.remote()))
    _merge(counts, _LOCAL.get(name, {}))
    return counts


def total_skipped(name: str = "default") -> int:
    """Sum of all counts of counter `name`."""
    return sum(n for reasons in skipped_counts(name).values() for n in reasons.values())


def reset_skipped_counts(name: str = "default") -> None:
    """Clear counter `name` (e.g. at the start of a run)."""
    if ray.is_initialized():
        ray.get(skip_counter(name).reset.remote())
    _LOCAL.pop(name, None)


def set_data_epoch(name: str, epoch: int) -> None:
    """Tell the datasource of run `name` that its next pass is epoch `epoch` (blocks until recorded)."""
    ray.get(skip_counter(name).set_epoch.remote(int(epoch)))


def data_epoch(name: str) -> int | None:
    """The epoch last set by `set_data_epoch` for run `name` (None: never set, or reset)."""
    return ray.get(skip_counter(name).get_epoch.remote())
