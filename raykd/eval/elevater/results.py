"""Gather item results into one table (mean and spread over seeds per data set and setting), print it, and
write ``results.json``, ``results.csv``, the per-data-set prediction files and the submission zips.

Output folder::

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from raykd.eval.elevater import submission
from raykd.eval.elevater.work import ItemResult
from raykd.eval.metrics import metric_key

ROW_FIELDS = ("dataset", "setting", "mode", "shots", "seed", "metric", "value", "n_train", "n_test", "lr",
              "weight_decay", "searched", "seconds", "cpu_seconds", "error")


def row(result: ItemResult) -> dict[str, Any]:
    """One item as a flat dict (the CSV row; the JSON row adds all metrics, hyper-parameters, counts)."""
    return {"dataset": result.dataset, "setting": result.setting, "mode": result.mode, "shots": result.shots,
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
    """Per (data set, setting): the metric's mean and standard deviation over the successful seeds."""
    out = []
    for (dataset, setting), group in _groups(results).items():
        ok = [r for r in group if r.ok]
        values = [r.value for r in ok]
        out.append({
            "dataset": dataset, "setting": setting, "metric": group[0].metric,
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


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table, one line per data set x setting."""
    header = ("dataset", "setting", "metric", "value", "seeds", "n_test", "time")
    lines = []
    for s in summary:
        if not s["seeds"]:
            lines.append((s["dataset"], s["setting"], s["metric"], "FAILED", "-", "-", f"{s['seconds']:.1f}s"))
            continue
        value = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if len(s["seeds"]) > 1 else "")
        seeds = ",".join(map(str, s["seeds"])) + (f" (failed {s['failed_seeds']})" if s["failed_seeds"] else "")
        lines.append((s["dataset"], s["setting"], s["metric"], value, seeds, str(s["n_test"]), f"{s['seconds']:.1f}s"))
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


def write_outputs(out_dir: str | Path, results: Sequence[ItemResult], model_name: str,
                  extra: dict[str, Any] | None = None, predictions: bool = True) -> dict[str, Path]:
    """Write everything listed in the module docstring; returns the main paths by name."""
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
