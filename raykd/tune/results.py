"""The end of a sweep: one row per trial (config, metric, status), the best trial, a CSV and a table."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from raykd.tune.spec import trial_overrides
from raykd.tune.trainable import CHECKPOINT_PATH, SAMPLES, SAMPLES_TOTAL

COMPLETED, STOPPED, ERROR, NO_RESULT = "completed", "stopped early", "error", "no result"


def trial_status(metrics: dict, error) -> str:
    """completed (trained its whole run), stopped early (by the scheduler), error, or no result."""
    if error is not None:
        return ERROR
    if SAMPLES not in metrics:
        return NO_RESULT
    return COMPLETED if metrics[SAMPLES] >= metrics.get(SAMPLES_TOTAL, 0) else STOPPED


def trial_row(trial_id: str, params: dict, metrics: dict, error, keys: list[str], metric: str) -> dict:
    """One trial as a flat row: trial_id, each search key, the metric (last reported), samples, status, checkpoint."""
    value = metrics.get(metric)
    return {"trial_id": trial_id, **{k: params.get(k) for k in keys},
            metric: float(value) if isinstance(value, (int, float)) else None,
            SAMPLES: metrics.get(SAMPLES), "status": trial_status(metrics, error),
            "checkpoint": metrics.get(CHECKPOINT_PATH)}


def rows_from_results(results, keys: list[str], metric: str) -> list[dict]:
    """Rows of a Tune `ResultGrid`, in trial-id order."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(result.path).name
        rows.append(trial_row(trial_id, result.config or {}, metrics, result.error, keys, metric))
    return sorted(rows, key=lambda r: r["trial_id"])


def best_row(rows: list[dict], metric: str, mode: str) -> dict | None:
    """The trial with the best last-reported metric (errored trials and NaN excluded)."""
    scored = [r for r in rows if r["status"] != ERROR and r[metric] is not None and math.isfinite(r[metric])]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: r[metric])


def to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def to_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Fixed-width text table of `rows` (the checkpoint column is left to the CSV)."""
    if not rows:
        return "(no trials)"
    columns = columns or [c for c in rows[0] if c != "checkpoint"]
    cells = [columns] + [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def best_summary(best: dict, keys: list[str], metric: str, mode: str, fixed: list[str]) -> dict:
    """best.json: the winning trial, its values as --set overrides, and its latest checkpoint."""
    params = {k: best[k] for k in keys}
    return {"metric": metric, "mode": mode, "value": best[metric], "trial_id": best["trial_id"],
            "status": best["status"], "config": params, "overrides": fixed + trial_overrides(params),
            "checkpoint": best["checkpoint"]}


def write_text(path: str, text: str) -> None:
    """Write `text` to a local path or a URI Ray's storage accepts (s3://, gs://, ...)."""
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        return
    import pyarrow.fs

    fs, fs_path = pyarrow.fs.FileSystem.from_uri(path)
    with fs.open_output_stream(fs_path) as f:
        f.write(text.encode())


def dump_json(data: dict) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"
