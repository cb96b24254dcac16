"""Driver-side logging of a run: TensorBoard scalars, results.jsonl and a one-line progress report.

`RunLogger` is a Ray Train `UserCallback`; it runs in the train controller (on the head node),
so workers never touch the run directory and logs survive worker restarts.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ray.train import UserCallback

TRAIN_PREFIXES = ("train/", "data/")
POSITION_KEYS = ("step", "epoch")


def evaluation_metrics(metrics: dict) -> dict:
    """`<task>/<dataset>/<metric>` entries (everything that is not training bookkeeping)."""
    return {k: v for k, v in metrics.items() if "/" in k and not k.startswith(TRAIN_PREFIXES)}


def progress_line(metrics: dict) -> str:
    parts = [f"step {metrics.get('step', 0)}", f"epoch {metrics.get('epoch', 0)}"]
    for key in ("train/loss", "train/lr", "train/logit_scale", "train/samples_per_s", "train/data_wait_frac"):
        if key in metrics:
            parts.append(f"{key.split('/', 1)[1]} {metrics[key]:.4g}")
    parts += [f"{k} {v:.4f}" for k, v in evaluation_metrics(metrics).items()]
    return "[raykd] " + " | ".join(parts)


class ScalarWriter:
    """TensorBoard scalars written synchronously with tensorboardX's record writer and protos.

    tensorboardX's SummaryWriter queues events for a background thread that flushes every
    `flush_secs`; the train controller can exit before that, losing the last epoch's metrics.
    """

    def __init__(self, directory: str | Path):
        from tensorboardX.event_file_writer import EventsWriter

        Path(directory).mkdir(parents=True, exist_ok=True)
        self._events = EventsWriter(str(Path(directory) / "events"))

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar

        for key, value in scalars.items():
            self._events.write_event(Event(wall_time=time.time(), step=step, summary=scalar(key, value)))
        self._events.flush()


class RunLogger(UserCallback):
    """results.jsonl, the progress line and (unless `tensorboard=False`) TensorBoard scalars."""

    def __init__(self, run_dir: str, tensorboard: bool = True):
        self.run_dir = str(run_dir)
        self.tensorboard = tensorboard
        self._writer = None

    def __getstate__(self):
        return {**self.__dict__, "_writer": None}

    def log(self, metrics: dict) -> None:
        step = int(metrics.get("step", 0))
        if self.tensorboard and self._writer is None:
            self._writer = ScalarWriter(Path(self.run_dir) / "tensorboard")
        scalars = {k: float(v) for k, v in metrics.items()
                   if k not in POSITION_KEYS and isinstance(v, (int, float)) and math.isfinite(v)}
        if self._writer is not None:
            self._writer.add_scalars(scalars, step)
        evals = evaluation_metrics(metrics)
        if evals:
            record = {"step": step, "epoch": metrics.get("epoch"), "metrics": evals}
            with open(Path(self.run_dir) / "results.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        print(progress_line(metrics), flush=True)

    def after_report(self, run_context, metrics, checkpoint):
        if metrics:
            self.log(metrics[0])  # rank 0 carries evaluation results


def read_tensorboard_scalars(tb_dir: str | Path) -> dict[str, list[float]]:
    """Scalars written by `RunLogger`: TFRecord framing + tensorboardX's Event proto (no TensorBoard needed)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[float]] = {}
    for path in sorted(Path(tb_dir).glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4  # length, its crc, payload, payload crc
            for value in event.summary.value:
                out.setdefault(value.tag, []).append(value.simple_value)
    return out
