"""Fault injection for tests: a training worker exits abruptly at a chosen step, or while writing a checkpoint.

`RAYKD_FAULTS` holds a JSON list of faults, each {"at": "step" | "checkpoint", "rank": r, "step": s,
"marker": path}: rank r exits (`os._exit`, as a killed process would, no cleanup) right after optimiser
step s, or, for "checkpoint", rank 0 exits after writing step s's checkpoint file and before making it
final. Each fault fires once: the worker that fires it first creates `marker`; a restarted worker finds it
and goes on. Unset (outside tests), nothing happens. The trainer forwards the variable to its workers
(`worker_env`), since a running Ray's workers do not see the driver's later environment.
"""
from __future__ import annotations

import json
import os

ENV = "RAYKD_FAULTS"
AT = ("step", "checkpoint")


def worker_env() -> dict[str, str]:
    """{RAYKD_FAULTS: its value} when the driver has it set (checked here, so a typo fails before the run), else {}."""
    if ENV not in os.environ:
        return {}
    _faults()
    return {ENV: os.environ[ENV]}


def _faults() -> list[dict]:
    faults = json.loads(os.environ.get(ENV) or "[]")
    for fault in faults:
        if fault.get("at") not in AT or not {"rank", "step", "marker"} <= fault.keys():
            raise ValueError(f"{ENV}: each fault needs at ({' | '.join(AT)}), rank, step and marker; got {fault}")
    return faults


def maybe_exit(at: str, rank: int, step: int) -> None:
    """Exit this process now if a fault not yet fired names (at, rank, step)."""
    if ENV not in os.environ:
        return
    for fault in _faults():
        if (fault["at"], fault["rank"], fault["step"]) != (at, rank, step):
            continue
        try:
            os.close(os.open(fault["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # atomic: fires once
        except FileExistsError:
            continue
        print(f"[raykd] fault injected: rank {rank} exits at {at} {step}", flush=True)
        os._exit(1)
