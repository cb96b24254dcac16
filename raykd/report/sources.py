"""What `raykd report` reads: run, sweep and evaluation directories, by their file formats only.

- a **run** (`raykd train`, or one trial of a sweep): `results.jsonl` (one `{"step", "epoch", "metrics"}` per
  evaluation) and `tensorboard/events.out.tfevents.*` (every reported scalar at its step: `train/loss`,
  `train/lr`, `train/samples_per_s`, ... and the evaluation metrics);
- a **sweep** (`raykd tune`): `<experiment>/trials.csv` (one row per trial: its values, the metric, samples,
  status), `best.json` and one run directory per trial (`<experiment>/<trial_id>/`);
- an **evaluation** (`raykd eval ... --out DIR`, `raykd eval elevater ... --out DIR`): `results.json`, with
  `metrics` (`{"<task>/<dataset>/<metric>": value}`) and, from ELEVATER, `summary` (one entry per data set x
  setting: `dataset`, `setting`, `metric`, `mean`, `std`, `seeds`).
"""
from __future__ import annotations

import csv
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

Series = list[tuple[int, float]]  # (step, value), in the order written
TRAIN_PREFIXES = ("train/", "data/")


@dataclass
class Run:
    name: str
    path: Path
    scalars: dict[str, Series] = field(default_factory=dict)  # TensorBoard: every reported scalar
    evals: dict[str, Series] = field(default_factory=dict)  # results.jsonl: evaluation metrics

    @property
    def train(self) -> dict[str, Series]:
        return {k: v for k, v in self.scalars.items() if k.startswith(TRAIN_PREFIXES)}

    @property
    def metrics(self) -> dict[str, Series]:
        """Evaluation metrics over steps: results.jsonl, else the non-training TensorBoard scalars."""
        return self.evals or {k: v for k, v in self.scalars.items() if not k.startswith(TRAIN_PREFIXES)}

    def last(self, key: str) -> float | None:
        series = self.metrics.get(key) or self.scalars.get(key)
        return series[-1][1] if series else None


@dataclass
class Sweep:
    name: str
    path: Path
    trials: list[Run]
    rows: list[dict]  # trials.csv, values parsed (numbers as floats, '' as None)
    best: dict | None  # best.json
    metric: str = ""
    mode: str = "max"


@dataclass
class Evaluation:
    name: str
    path: Path
    metrics: dict[str, float]  # results.json's flat metrics
    datasets: list[dict] = field(default_factory=list)  # ELEVATER's summary entries
    model: str = ""

    @property
    def is_elevater(self) -> bool:
        return bool(self.datasets)


def read_scalars(tb_dir: str | Path) -> dict[str, Series]:
    """{tag: [(step, value)]} from TensorBoard event files: TFRecord framing (length, its crc, payload,
    payload crc) around tensorboardX's `Event` protos."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, Series] = {}
    for path in sorted(Path(tb_dir).glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out


def read_results_jsonl(path: str | Path) -> dict[str, Series]:
    """{metric: [(step, value)]} from a run's results.jsonl (non-numbers and NaN skipped)."""
    out: dict[str, Series] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for key, value in (record.get("metrics") or {}).items():
            if _number(value) is not None:
                out.setdefault(key, []).append((int(record.get("step") or 0), float(value)))
    return out


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _cell(text: str):
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def is_run(path: Path) -> bool:
    return (path / "results.jsonl").is_file() or (path / "tensorboard").is_dir()


def is_sweep(path: Path) -> bool:
    return (path / "trials.csv").is_file() or (path / "best.json").is_file() or any(path.glob("experiment_state-*.json"))


def load_run(path: Path, name: str = "") -> Run:
    run = Run(name or path.name, path)
    if (path / "tensorboard").is_dir():
        run.scalars = read_scalars(path / "tensorboard")
    if (path / "results.jsonl").is_file():
        run.evals = read_results_jsonl(path / "results.jsonl")
    return run


def load_sweep(path: Path) -> Sweep:
    rows = []
    if (path / "trials.csv").is_file():
        with open(path / "trials.csv", newline="") as f:
            rows = [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]
    best = json.loads((path / "best.json").read_text()) if (path / "best.json").is_file() else None
    trial_dirs = sorted(p for p in path.iterdir() if p.is_dir() and is_run(p))
    sweep = Sweep(path.name, path, [load_run(p) for p in trial_dirs], rows, best)
    if best:
        sweep.metric, sweep.mode = best.get("metric", ""), best.get("mode", "max")
    elif rows:  # the metric is the column between the search keys and `samples`
        columns = list(rows[0])
        if "samples" in columns and columns.index("samples") > 1:
            sweep.metric = columns[columns.index("samples") - 1]
    return sweep


def load_evaluation(path: Path) -> Evaluation:
    doc = json.loads((path / "results.json").read_text())
    metrics = {k: float(v) for k, v in (doc.get("metrics") or {}).items() if _number(v) is not None}
    datasets = [s for s in doc.get("summary") or [] if isinstance(s, dict) and _number(s.get("mean")) is not None]
    model = str(doc.get("model_name") or doc.get("model") or doc.get("checkpoint") or "")
    return Evaluation(path.name, path, metrics, datasets, model)


def load(path: str | Path) -> Run | Sweep | Evaluation:
    """The run, sweep or evaluation at `path`; raises FileNotFoundError / ValueError saying what it expected."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"raykd report: no such directory: {path}")
    if (path / "results.json").is_file():
        return load_evaluation(path)
    if is_sweep(path):
        return load_sweep(path)
    if is_run(path):
        return load_run(path)
    raise ValueError(f"{path}: not a run (results.jsonl, tensorboard/), a sweep (trials.csv, best.json) or an "
                     "evaluation (results.json) directory")
