"""Run a function on two gloo processes (world size 2) and collect each rank's result.

``run_in_two_processes(fn, *args)`` calls ``fn(*args)`` on rank 0 and rank 1 of a gloo process
group and returns ``[result_rank0, result_rank1]``. ``fn`` must be a module-level (picklable)
function; results travel back through ``torch.save``, so tensors, dicts and lists are fine.

The two workers are started once with ``torch.multiprocessing.spawn`` and reused by every test
(process start and ``import torch`` dominate the cost of a spawn); after any failure they are
torn down and the next call starts fresh ones. The process group has a short timeout so a rank
waiting on a crashed peer errors out instead of hanging.
"""

from __future__ import annotations

import atexit
import io
import os
import queue
import shutil
import tempfile
import time
import traceback
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2
_CALL_TIMEOUT_S = 60.0
_pool: "_Pool | None" = None


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _worker(rank: int, init_file: str, inqs, outq) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE,
        timeout=timedelta(seconds=30),
    )
    while True:
        msg = inqs[rank].get()
        if msg is None:
            break
        fn, args = msg
        try:
            outq.put((rank, True, _dumps(fn(*args))))
        except BaseException:  # noqa: BLE001 - report every failure to the parent
            outq.put((rank, False, traceback.format_exc()))
    dist.destroy_process_group()
    # The parent has read every result; skip the slow interpreter teardown (seconds with torch).
    os._exit(0)


class _Pool:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.inqs = [ctx.Queue() for _ in range(WORLD_SIZE)]
        self.outq = ctx.Queue()
        self.tmp = tempfile.mkdtemp(prefix="raykd-dist-")
        init_file = os.path.join(self.tmp, "init")
        self.procs = mp.spawn(_worker, args=(init_file, self.inqs, self.outq), nprocs=WORLD_SIZE, join=False)

    def run(self, fn, args) -> list:
        for q in self.inqs:
            q.put((fn, args))
        results: dict[int, object] = {}
        errors = []
        for _ in range(WORLD_SIZE):
            rank, ok, payload = self._next_result()
            if ok:
                results[rank] = torch.load(io.BytesIO(payload), weights_only=False)
            else:
                errors.append(f"rank {rank}:\n{payload}")
        if errors:
            raise RuntimeError("worker failure:\n" + "\n".join(errors))
        return [results[r] for r in range(WORLD_SIZE)]

    def _next_result(self):
        deadline = time.monotonic() + _CALL_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                return self.outq.get(timeout=0.5)
            except queue.Empty:
                dead = [p.exitcode for p in self.procs.processes if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"a worker process exited (exit codes {dead})") from None
        raise RuntimeError(f"no result from the workers within {_CALL_TIMEOUT_S}s")

    def close(self) -> None:
        for q in self.inqs:
            q.put(None)
        for p in self.procs.processes:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_in_two_processes(fn, *args) -> list:
    """``[fn(*args) on rank 0, fn(*args) on rank 1]`` under a 2-process gloo group."""
    global _pool
    if _pool is None:
        _pool = _Pool()
    try:
        return _pool.run(fn, args)
    except BaseException:
        _shutdown()
        raise


def _shutdown() -> None:
    global _pool
    if _pool is not None:
        pool, _pool = _pool, None
        pool.close()


atexit.register(_shutdown)


def my_half(x: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous block of a global batch ``x`` [WORLD_SIZE * B, ...]."""
    return x.chunk(dist.get_world_size(), dim=0)[dist.get_rank()]
