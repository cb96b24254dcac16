"""Results of both evaluations as tables and files, in one place.

Tasks on data sets (``raykd eval``, :mod:`raykd.eval.run`): :func:`format_table` prints the metrics by task
and data set; :func:`write_eval_outputs` writes ``<out>/results.json``, appends to a run's ``results.jsonl``
and (optionally) CLIP_benchmark files through :func:`write_clip_benchmark_json`.

ELEVATER (``raykd eval elevater``, :mod:`raykd.eval.elevater.run`): item results gathered into one table (mean
and spread over seeds per data set and setting, :func:`summarise`, :func:`format_elevater_table`) and
written by :func:`write_elevater_outputs`::

    results.json      {"model_name", "rows": [one per item], "summary": [one per data set x setting],
                       "metrics": {"elevater_<setting>/<dataset>/<metric>": mean}, "errors": {item: message}}
    results.csv       the rows
    predictions/<setting>/<dataset>.json        one prediction record (all seeds) per data set
    submission/<setting>/all_predictions.zip    the EvalAI submission of that setting

Prediction files and submissions cover the data sets whose every seed succeeded.
"""
from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from raykd.eval.elevater import submission
from raykd.eval.elevater.work import ItemResult
from raykd.eval.engine import ERRORS
from raykd.eval.metrics import metric_key, split_key


# ---------------------------------------------------------------------------------------------- tasks on data sets
def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def format_table(metrics: dict[str, float], skipped: dict[str, str], errors: dict[str, str]) -> str:
    """Metrics grouped by (task, data set), one metric a line; then the skipped tasks and the failures."""
    rows = [split_key(k) + (_fmt(v),) for k, v in sorted(metrics.items())]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("task", "dataset", "metric"))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("task", "dataset", "metric", "value"), widths + [0])).rstrip()]
    previous = None
    for task, dataset, metric, value in rows:
        head = (task, dataset) if (task, dataset) != previous else ("", "")
        lines.append("  ".join([head[0].ljust(widths[0]), head[1].ljust(widths[1]), metric.ljust(widths[2]), value]))
        previous = (task, dataset)
    lines += [f"skipped {task}: {reason}" for task, reason in sorted(skipped.items())]
    lines += [f"FAILED {key}: {message}" for key, message in sorted(errors.items())]
    return "\n".join(lines)


def write_eval_outputs(record: dict, out: Path, run_dir: Path | None, clip_dir: Path | None, model_name: str,
                       progress: Callable[[str], None] = print) -> None:
    """``<out>/results.json`` (``record``); ``{"step", "epoch", "metrics"}`` appended to ``<run_dir>/results.jsonl``
    (when there are metrics); the CLIP_benchmark files in ``clip_dir``. Each write is announced to ``progress``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    progress(f"wrote {out / 'results.json'}")
    if run_dir is not None and record["metrics"]:
        with open(run_dir / "results.jsonl", "a") as f:
            f.write(json.dumps({"step": record["step"], "epoch": record["epoch"], "metrics": record["metrics"]}) + "\n")
        progress(f"appended to {run_dir / 'results.jsonl'}")
    if clip_dir is not None:
        paths = write_clip_benchmark_json(record["metrics"], clip_dir, model_name)
        progress(f"wrote {len(paths)} CLIP_benchmark files to {clip_dir}")


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


# ---------------------------------------------------------------------------------------------- ELEVATER
ROW_FIELDS = ("dataset", "setting", "protocol", "mode", "shots", "seed", "metric", "value", "n_train", "n_test",
              "lr", "weight_decay", "searched", "seconds", "cpu_seconds", "error")


def row(result: ItemResult) -> dict[str, Any]:
    """ELEVATER: one item as a flat dict (the CSV row; the JSON row adds all metrics, hyper-parameters, counts)."""
    return {"dataset": result.dataset, "setting": result.setting, "protocol": result.protocol,
            "mode": result.mode, "shots": result.shots,
            "seed": result.seed, "metric": result.metric, "value": result.value, "n_train": result.n_train,
            "n_test": result.n_test, "lr": result.hparams.get("lr"), "weight_decay": result.hparams.get("weight_decay"),
            "searched": result.hparams.get("searched"), "seconds": round(result.seconds, 3),
            "cpu_seconds": round(result.cpu_seconds, 3), "error": result.error}


def _groups(results: Sequence[ItemResult]) -> dict[tuple[str, str], list[ItemResult]]:
    groups: dict[tuple[str, str], list[ItemResult]] = {}
    for r in results:
        groups.setdefault((r.dataset, r.setting), []).append(r)
    return groups


def summarise(results: Sequence[ItemResult]) -> list[dict[str, Any]]:
    """ELEVATER: per (data set, setting): the metric's mean and standard deviation over the successful seeds."""
    out = []
    for (dataset, setting), group in _groups(results).items():
        ok = [r for r in group if r.ok]
        values = [r.value for r in ok]
        out.append({
            "dataset": dataset, "setting": setting, "protocol": group[0].protocol, "metric": group[0].metric,
            "mean": float(np.mean(values)) if values else float("nan"),
            "std": float(np.std(values)) if values else float("nan"),
            "seeds": [r.seed for r in ok], "failed_seeds": [r.seed for r in group if not r.ok],
            "n_test": ok[0].n_test if ok else 0, "seconds": round(sum(r.seconds for r in group), 3),
            "error": next((r.error for r in group if not r.ok), None),
        })
    return out


def flat_metrics(summary: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``elevater_<setting>/<dataset>/<metric>`` -> mean over seeds (successful groups only)."""
    return {metric_key(f"elevater_{s['setting']}", s["dataset"], s["metric"]): s["mean"]
            for s in summary if s["seeds"]}


def format_elevater_table(summary: Sequence[dict[str, Any]]) -> str:
    """ELEVATER: a fixed-width text table, one line per data set x setting (of :func:`summarise`)."""
    header = ("dataset", "setting", "protocol", "metric", "value", "seeds", "n_test", "time")
    lines = []
    for s in summary:
        protocol = s.get("protocol") or "-"
        if not s["seeds"]:
            lines.append((s["dataset"], s["setting"], protocol, s["metric"], "FAILED", "-", "-",
                          f"{s['seconds']:.1f}s"))
            continue
        value = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if len(s["seeds"]) > 1 else "")
        seeds = ",".join(map(str, s["seeds"])) + (f" (failed {s['failed_seeds']})" if s["failed_seeds"] else "")
        lines.append((s["dataset"], s["setting"], protocol, s["metric"], value, seeds, str(s["n_test"]),
                      f"{s['seconds']:.1f}s"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    text = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (header, *lines)]
    errors = [f"  {s['dataset']} {s['setting']}: {s['error']}" for s in summary if s["error"]]
    return "\n".join(text + (["errors:", *errors] if errors else []))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def prediction_records(results: Sequence[ItemResult], model_name: str) -> dict[str, list[dict[str, Any]]]:
    """``{setting: [record per data set]}`` for the data sets whose every seed succeeded."""
    out: dict[str, list[dict[str, Any]]] = {}
    for (dataset, setting), group in _groups(results).items():
        if not all(r.ok for r in group):
            continue
        group = sorted(group, key=lambda r: r.seed)
        params = dict(group[0].params)
        params["num_trainable_params"] = int(np.mean([r.params["num_trainable_params"] for r in group]))
        out.setdefault(setting, []).append(submission.prediction_record(
            model_name, dataset, group[0].shots, [r.seed for r in group], [r.probs for r in group], params))
    return out


def write_elevater_outputs(out_dir: str | Path, results: Sequence[ItemResult], model_name: str,
                           extra: dict[str, Any] | None = None, predictions: bool = True) -> dict[str, Path]:
    """ELEVATER: write the files listed in the module docstring; returns the main paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    rows = [row(r) | {"metrics": r.metrics, "hparams": r.hparams, "params": r.params,
                      "classnames_source": r.classnames_source} for r in results]
    errors = {f"{r.dataset} {r.setting} seed {r.seed}": r.error for r in results if not r.ok}
    doc = {"model_name": model_name, **(extra or {}), "rows": rows, "summary": summary,
           "metrics": flat_metrics(summary), "errors": errors}
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv"}
    paths["json"].write_text(json.dumps(_json_safe(doc), indent=1) + "\n")
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_FIELDS)
        writer.writeheader()
        writer.writerows(row(r) for r in results)
    if predictions:
        for setting, records in prediction_records(results, model_name).items():
            for record in records:
                submission.write_prediction_file(out_dir / "predictions" / setting / f"{record['dataset_name']}.json",
                                                 record)
            paths[f"submission/{setting}"] = submission.write_submission(
                out_dir / "submission" / setting / submission.SUBMISSION_ZIP, records)
    return paths
