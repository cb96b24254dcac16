"""The finished items of an ELEVATER evaluation, kept on disk as they complete, so a rerun with `--resume`
(after a killed driver, a lost head node) runs only the rest.

    <out>/items/run.json                           the checkpoint, weights and data root the items belong to
    <out>/items/<dataset>__<setting>__seed<k>.json  one finished item: its ItemResult less the predictions
    <out>/items/<dataset>__<setting>__seed<k>.npy   its test predictions (float32 [N, C]; no pickles)

Only successful items are kept: a failed one runs again. The JSON is written after the predictions and
renamed into place, so an item cut short by a crash is not there.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from raykd.eval.elevater.work import ItemResult, WorkItem


def item_key(dataset: str, setting: str, seed: int) -> str:
    return f"{dataset}__{setting}__seed{seed}"


class Journal:
    """Finished items under `<out>/items/`, for one (checkpoint, weights, data root)."""

    def __init__(self, out_dir: str | Path, run: dict, resume: bool):
        self.dir = Path(out_dir) / "items"
        marker = self.dir / "run.json"
        if marker.is_file():
            if not resume:
                raise ValueError(f"--out {out_dir} already holds results of an ELEVATER evaluation: pass --resume to "
                                 "keep its finished items and run the rest, or choose another --out")
            before = json.loads(marker.read_text())
            if before != run:
                changed = sorted(k for k in set(before) | set(run) if before.get(k) != run.get(k))
                raise ValueError(f"--resume: {out_dir} holds items of another evaluation (differs in {changed}); "
                                 "choose another --out")
        self.dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(run, indent=1) + "\n")

    def finished(self) -> dict[str, ItemResult]:
        """{item key: ItemResult} of the items finished earlier."""
        results = {}
        for path in sorted(self.dir.glob("*__seed*.json")):
            fields = json.loads(path.read_text())
            probs = np.load(path.with_suffix(".npy"), allow_pickle=False)
            results[path.stem] = ItemResult(**fields, probs=probs)
        return results

    def add(self, result: ItemResult) -> None:
        """Keep `result` if it succeeded (predictions first, then the JSON renamed into place)."""
        if not result.ok or result.probs is None:
            return
        key = item_key(result.dataset, result.setting, result.seed)
        np.save(self.dir / f"{key}.npy", np.asarray(result.probs), allow_pickle=False)
        fields = {k: v for k, v in dataclasses.asdict(result).items() if k != "probs"}
        partial = self.dir / f".{key}.json.partial"
        partial.write_text(json.dumps(fields, default=float) + "\n")
        os.replace(partial, self.dir / f"{key}.json")

    def split(self, items: list[WorkItem]) -> tuple[list[WorkItem], list[ItemResult]]:
        """(items still to run, results of those finished earlier)."""
        done = self.finished()
        keys = [item_key(i.spec.name, i.setting, i.seed) for i in items]
        return [i for i, k in zip(items, keys) if k not in done], [done[k] for k in keys if k in done]
