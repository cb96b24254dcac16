"""raykd's built-in data sets (``shapes``, ``digits``) written in ELEVATER's on-disk layout, so
``raykd eval elevater`` runs out of the box::

    <data_root>/classification/<id>_builtin/
        labels.txt                      the built-in's class names, line i = label i
        train.txt, test.txt             iris index lines: ``train.zip@train/000000.jpg 3``
        train.zip, test.zip             the built-in's JPEG bytes, stored as generated

The images come from ``raykd.data.builtin.ensure_builtin`` (generated into its cache on first use). Writing
goes to a temporary sibling folder renamed into place, so concurrent writers are safe.
"""
from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from pathlib import Path

from raykd.data.builtin import ensure_builtin, read_lines, shard_paths
from raykd.data.shards import iter_tar_samples
from raykd.eval.elevater._registry import ElevaterDataset
from raykd.eval.elevater.catalogue import builtin_spec
from raykd.eval.elevater.reader import dataset_folder, missing_files


def _write_split(source: Path, split: str, folder: Path) -> int:
    lines = []
    with zipfile.ZipFile(folder / f"{split}.zip", "w", zipfile.ZIP_STORED) as zf:
        for shard in shard_paths(source, split):
            with open(shard, "rb") as f:
                for sample in iter_tar_samples(f, url=shard):
                    member = f"{split}/{len(lines):06d}.jpg"
                    zf.writestr(member, sample["jpg"])
                    lines.append(f"{split}.zip@{member} {int(sample['cls'])}")
    (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def write_builtin(name: str, data_root: str | Path, *, dataset_id: str | None = None, train_size: int | None = None,
                  cache_root: str | Path | None = None) -> Path:
    """Write built-in ``name`` under ``data_root`` in ELEVATER layout (as ``dataset_id``, default ``name``)
    unless it is already complete; returns its folder. ``train_size`` / ``cache_root`` go to
    ``ensure_builtin``. Raises ValueError for an unknown built-in."""
    spec = builtin_spec(name, dataset_id)
    folder = dataset_folder(data_root, spec)
    if not missing_files(data_root, spec):
        return folder
    source = ensure_builtin(name, cache_root, train_size)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / "labels.txt").write_text("\n".join(read_lines(source / "classnames.txt")) + "\n")
        for split in ("train", "test"):
            _write_split(source, split, tmp)
        if folder.exists():  # an incomplete earlier copy
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(tmp, folder)
        except OSError:
            if missing_files(data_root, spec):  # not another writer that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def ensure_written(spec: ElevaterDataset, data_root: str | Path) -> bool:
    """Write ``spec`` if it is a built-in missing files under ``data_root``; True if it wrote."""
    if spec.builtin is None or not missing_files(data_root, spec):
        return False
    write_builtin(spec.builtin, data_root, dataset_id=spec.name)
    return True
