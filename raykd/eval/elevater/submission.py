"""EvalAI submission files for the ELEVATER leaderboard (the toolkit's ``submission_file_readme.md`` and
``vision_benchmark/commands/prepare_submit.py``).

Per data set and setting, one prediction record::

    {"model_name", "dataset_name", "num_trainable_params", "num_params", "num_visual_params",
     "num_backbone_params", "n_shot", "rnd_seeds": [s, ...], "predictions": [S x N x C probabilities]}

``n_shot`` is 0 for zero-shot, k for k-shot and -1 for full-shot. The submission is ``all_predictions.zip``
holding ``all_predictions.json`` = ``{"data": [record, ...]}``; records of one data set are merged as
``prepare_submit.py`` does (seeds and predictions concatenated, ``num_trainable_params`` averaged, every
other key equal). Floats are rounded to 6 decimals, as the toolkit writes them.
"""
from __future__ import annotations

import itertools
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SUBMISSION_JSON = "all_predictions.json"
SUBMISSION_ZIP = "all_predictions.zip"
PRECISION = 6
_MERGED = ("rnd_seeds", "predictions")
_AVERAGED = ("num_trainable_params",)


def prediction_record(model_name: str, dataset: str, n_shot: int, seeds: Sequence[int],
                      predictions: Sequence[np.ndarray], params: Mapping[str, int]) -> dict[str, Any]:
    """One data set's record; ``predictions`` holds one ``[N, C]`` array per seed (in ``seeds`` order)."""
    if len(seeds) != len(predictions):
        raise ValueError(f"{dataset}: {len(seeds)} seeds but {len(predictions)} prediction arrays")
    shapes = {np.shape(p) for p in predictions}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"{dataset}: predictions must be [N, C] arrays of one shape, got {sorted(shapes)}")
    return {
        "model_name": model_name, "dataset_name": dataset,
        "num_trainable_params": params.get("num_trainable_params", 0), "num_params": params.get("num_params"),
        "num_visual_params": params.get("num_visual_params"), "num_backbone_params": params.get("num_backbone_params"),
        "n_shot": int(n_shot), "rnd_seeds": [int(s) for s in seeds],
        "predictions": [np.round(np.asarray(p, dtype=np.float64), PRECISION).tolist() for p in predictions],
    }


def dumps(data: Any) -> str:
    """Compact JSON (predictions are already rounded by :func:`prediction_record`)."""
    return json.dumps(data, separators=(",", ":"))


def combine(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge records per ``dataset_name`` (first-seen order), as ``prepare_submit.py`` does.

    Raises ValueError if two records of one data set disagree on a key that is neither merged nor averaged.
    """
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_dataset.setdefault(record["dataset_name"], []).append(record)
    out = []
    for dataset, group in by_dataset.items():
        merged: dict[str, Any] = {}
        for key in group[0]:
            values = [r[key] for r in group]
            if key in _MERGED:
                merged[key] = list(itertools.chain.from_iterable(values))
            elif key in _AVERAGED:
                merged[key] = float(np.mean(values)) if len(values) > 1 else values[0]
            elif any(v != values[0] for v in values):
                raise ValueError(f"{dataset}: records disagree on {key!r}: {values}")
            else:
                merged[key] = values[0]
        out.append(merged)
    return out


def write_prediction_file(path: str | Path, record: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(record))
    return path


def write_submission(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """``all_predictions.zip`` (deflated) with ``all_predictions.json`` of the combined records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(SUBMISSION_JSON, dumps({"data": combine(records)}))
    return path


def read_submission(path: str | Path) -> dict[str, dict[str, Any]]:
    """A submission zip -> ``{dataset_name: record}`` with ``predictions`` as float32 ``[S, N, C]``."""
    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read(SUBMISSION_JSON))["data"]
    out = {}
    for record in data:
        out[record["dataset_name"]] = {**record, "predictions": np.asarray(record["predictions"], dtype=np.float32)}
    return out
