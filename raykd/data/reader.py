"""Read one work unit (see `raykd.data.sampling`) into raw samples, captioned and labelled for its source.

Shared by the Ray Data pipeline and the DataLoader path. Faults go through the `ShardProcessor`'s
policy: a shard that cannot be opened (e.g. deleted mid-run) is `missing_shard` (FileNotFoundError)
or `unreadable_shard` (any other OSError), counted under its URL and logged as a warning naming it;
a damaged tar is `corrupt_tar` (the samples before the damage are kept); a record's image file that
is gone is `missing_image` (unreadable: `bad_image`). A built-in shard (`builtin://`) is generated on the reading node
first; a failure to generate it, or a copy that differs from the driver's, fails the read (never a skip).
"""
from __future__ import annotations

import logging

import numpy as np

from raykd.data.builtin import builtin_shard_path, is_builtin_url
from raykd.data.samples import SampleError, ShardProcessor
from raykd.data.sampling import unit_positions
from raykd.data.shards import iter_tar_samples, read_url

log = logging.getLogger(__name__)


def read_shard(data, url: str, processor: ShardProcessor) -> list[dict]:
    """All raw samples of one tar (bytes or stream). A corrupt/truncated tar keeps the samples read
    before the damage and reports SampleError('corrupt_tar', url, <key of last good sample>)."""
    samples: list[dict] = []
    try:
        for sample in iter_tar_samples(data, url):
            samples.append(sample)
    except Exception as exc:  # tarfile.ReadError, EOFError, ValueError from webdataset's grouping
        last = samples[-1]["__key__"] if samples else "<start of shard>"
        processor.skip(SampleError("corrupt_tar", url, f"after {last}", exc))
    return samples


def _tar_samples(unit: dict, processor: ShardProcessor) -> list[dict]:
    url = unit["url"]
    path = builtin_shard_path(url) if is_builtin_url(url) else url  # built-in: made on this node on first read
    try:
        data = read_url(path)
    except OSError as exc:
        reason = "missing_shard" if isinstance(exc, FileNotFoundError) else "unreadable_shard"
        processor.skip(SampleError(reason, url, "<whole shard>", exc))  # raises under on_error: raise
        log.warning("raykd data: skipped shard %s (%s: %s: %s)", url, reason, type(exc).__name__, exc)
        return []
    samples = read_shard(data, url, processor)
    if unit.get("limit") is not None:
        samples = samples[: unit["limit"]]
    positions = unit_positions(unit)
    if positions is not None:
        samples = [dict(samples[i]) for i in positions if i < len(samples)]
    return samples


def _record_samples(unit: dict, processor: ShardProcessor) -> list[dict]:
    samples = []
    for image_url, caption, label, key in unit["records"]:
        try:
            data = read_url(image_url)
        except OSError as exc:
            reason = "missing_image" if isinstance(exc, FileNotFoundError) else "bad_image"
            processor.skip(SampleError(reason, image_url, key, exc))
            continue
        sample = {"__key__": key, "__url__": image_url, "jpg": data, "txt": caption}
        if label >= 0:
            sample["cls"] = str(label)
        samples.append(sample)
    return samples


def unit_samples(unit: dict, labelling: tuple, processor: ShardProcessor) -> list[dict]:
    """Raw samples of `unit` in its order, captioned and labelled by `labelling` =
    (mode, label offset, class names, templates) of its source (see `raykd.data.sources`)."""
    samples = _record_samples(unit, processor) if unit.get("records") is not None else _tar_samples(unit, processor)
    mode, offset, classnames, templates = labelling
    if mode == "none":
        for sample in samples:
            sample.pop("cls", None)
    elif mode == "class":
        samples = _prompted(samples, offset, classnames, templates, unit.get("seed", 0), processor)
    return samples


def _prompted(samples, offset, classnames, templates, seed, processor) -> list[dict]:
    """Caption each sample with a random template filled with its class name; shift its label by `offset`."""
    rng = np.random.default_rng(seed)
    out = []
    for sample, t in zip(samples, rng.integers(len(templates), size=len(samples))):
        try:
            label = int(sample.get("cls"))
            if not 0 <= label < len(classnames):
                raise ValueError(f"label {label} outside the {len(classnames)} classes")
        except (TypeError, ValueError) as exc:
            processor.skip(SampleError("bad_label", sample.get("__url__", ""), sample.get("__key__", ""), exc))
            continue
        out.append({**sample, "txt": templates[t].format(classnames[label]), "cls": str(label + offset)})
    return out
