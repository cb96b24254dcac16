"""Training sources: the entries of `data.sources` resolved into shards with known sizes.

A `Source` is a list of `Shard`s plus how its samples are labelled. Four kinds, one per config key:
    shards          webdataset tars (local, brace patterns, folders, globs, any fsspec URL); sizes from
                    sizes.json / img2dataset `_stats.json` / counting local tars
    builtin         a built-in data set's image-caption pairs (`raykd.data.builtin`); without an explicit
                    `data.builtin_root` its shards are `builtin://` URLs, generated on each node on first read
    coco            a COCO captions JSON + its image folder: one sample per caption; the captions
                    are cut into record shards of `RECORDS_PER_SHARD`
    classification  labelled images as prompted captions ("a photo of a {class name}."): a built-in
                    name, a folder with classnames.txt (+ templates.txt) and tar shards with `cls`, or
                    an ImageFolder-style folder of class sub-folders
Labels: classification sources get their class index shifted into one joint label space (offsets
in source order); pair sources keep their shards' `cls` unless `labels: false` or, left unset, a
classification source is mixed in: then they are label -1 ("no class", as UniCL and CrossEntropy read it).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace

from raykd.config.schema import DataConfig, SourceConfig
from raykd.data.builtin import builtin_url, ensure_builtin, list_builtin
from raykd.data.shards import is_remote, open_url, shard_sizes, usable_shards, validate_shards

RECORDS_PER_SHARD = 1000
DEFAULT_TEMPLATES = ("a photo of a {}.",)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class Shard:
    """A tar shard (`url`) of `size` samples, or a record shard of single image files (`records`:
    (image url, caption, label, key) tuples; `url` names where they came from). `limit`: only the
    tar's first `limit` samples are used (`dataset_size` truncation); None: all."""

    url: str
    size: int
    records: tuple | None = None
    limit: int | None = None


@dataclass
class Source:
    """One resolved source: its shards and how samples get their caption and label (see module doc)."""

    name: str  # the config key, for messages: data.sources[1], data.train_shards, data.builtin
    shards: list[Shard]
    weight: float | None = None
    label_mode: str = "cls"  # cls: keep `cls` | none: label -1 | class: prompted caption + offset label
    label_offset: int = 0
    classnames: tuple = ()
    templates: tuple = ()
    skipped: dict = field(default_factory=dict)  # {shard url: {reason: n}} left out while resolving (empty shards)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.shards)

    def labelling(self) -> tuple:
        """What a reader needs to caption and label this source's samples (small, picklable)."""
        return self.label_mode, self.label_offset, self.classnames, self.templates


def source_entries(cfg: DataConfig) -> list[tuple[str, SourceConfig]]:
    """(config key, entry) of each training source: `data.sources`, else `train_shards`, else `builtin`."""
    if cfg.sources:
        return [(f"data.sources[{i}]", s) for i, s in enumerate(cfg.sources)]
    if cfg.train_shards:
        return [("data.train_shards", SourceConfig(shards=list(cfg.train_shards), labels=True))]
    if cfg.builtin:
        return [("data.builtin", SourceConfig(builtin=cfg.builtin, labels=True))]
    raise ValueError("data: no training data; set data.sources, data.train_shards or data.builtin")


def resolve_sources(cfg: DataConfig) -> list[Source]:
    """Resolve every source (generating built-in data on first use); call on the driver before Ray.

    Raises:
        FileNotFoundError / ValueError: naming the source's config key and the path.
    """
    entries = source_entries(cfg)
    mixed = any(e.classification for _, e in entries)
    sources, offset = [], 0
    for key, entry in entries:
        try:
            source = _resolve(key, entry, cfg, mixed)
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"{key}: {err}") from err
        if source.label_mode == "class":
            source.label_offset, offset = offset, offset + len(source.classnames)
        if not source.size:
            raise ValueError(f"{key}: no samples")
        sources.append(source)
    return sources


def _resolve(key: str, entry: SourceConfig, cfg: DataConfig, mixed: bool) -> Source:
    pair_labels = "cls" if (entry.labels if entry.labels is not None else not mixed) else "none"
    if entry.shards:
        urls, skipped = usable_shards(entry.shards, cfg.on_error)
        return Source(key, tar_shards(urls), entry.weight, pair_labels, skipped=skipped)
    if entry.builtin:
        directory = _builtin_dir(entry.builtin, cfg)
        return Source(key, _builtin_shards(directory, entry.split, cfg), entry.weight, pair_labels)
    if entry.coco:
        return Source(key, coco_shards(entry.coco, entry.images), entry.weight, "none")
    return _classification(key, entry, cfg)


def tar_shards(urls: list[str]) -> list[Shard]:
    return [Shard(url, n) for url, n in zip(urls, shard_sizes(urls))]


def _builtin_dir(name: str, cfg: DataConfig):
    return ensure_builtin(name, cfg.builtin_root or None, cfg.builtin_train_size or None)


def _builtin_shards(directory, split: str, cfg: DataConfig) -> list[Shard]:
    """A built-in split's shards; in the default cache as `builtin://` URLs, so that every node reads its own
    copy (generated there on first read) instead of the driver's disk. An explicit `data.builtin_root` is
    read as it is (e.g. shared storage)."""
    shards = tar_shards(_split_shards(directory, split))
    if cfg.builtin_root:
        return shards
    return [replace(shard, url=builtin_url(directory, shard.url)) for shard in shards]


def _split_shards(directory, split: str) -> list[str]:
    """The shards of `<directory>/<split>/`, or of `<directory>/` itself when it has no such folder."""
    directory = str(directory)
    if is_remote(directory):
        try:
            return validate_shards(_join(directory, split) + "/")
        except FileNotFoundError:
            return validate_shards(directory.rstrip("/") + "/")
    path = os.path.join(directory, split)
    return validate_shards(path if os.path.isdir(path) else directory)


def record_shards(records: list[tuple], origin: str) -> list[Shard]:
    """Cut (image url, caption, label, key) records into shards of `RECORDS_PER_SHARD`."""
    return [Shard(f"{origin}#{i // RECORDS_PER_SHARD}", len(chunk), tuple(chunk))
            for i in range(0, len(records), RECORDS_PER_SHARD)
            for chunk in [records[i:i + RECORDS_PER_SHARD]]]


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)


def coco_shards(captions_json: str, images: str) -> list[Shard]:
    """One record per caption of a COCO captions file (`images` + `annotations`), in file order."""
    with open_url(captions_json) as f:
        data = json.loads(f.read())
    try:
        files = {img["id"]: img["file_name"] for img in data["images"]}
        records = [(_join(images, files[a["image_id"]]), a["caption"], -1, str(a.get("id", i)))
                   for i, a in enumerate(data["annotations"])]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{captions_json} is not a COCO captions file (images: [{{id, file_name}}], "
                         f"annotations: [{{image_id, caption}}]): missing {err}") from err
    return record_shards(records, captions_json)


def _read_lines(url: str) -> list[str]:
    with open_url(url) as f:
        return [line for line in f.read().decode("utf-8").splitlines() if line.strip()]


def _classification(key: str, entry: SourceConfig, cfg: DataConfig) -> Source:
    name = entry.classification
    builtin = name in list_builtin()
    directory = str(_builtin_dir(name, cfg)) if builtin else name
    if not is_remote(directory) and not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory!r} is neither a built-in data set ({', '.join(list_builtin())}) "
                                "nor a folder")
    classnames_file = _join(directory, "classnames.txt")
    if is_remote(directory) or os.path.isfile(classnames_file):
        classnames = _read_lines(classnames_file)
        shards = (_builtin_shards(directory, entry.split, cfg) if builtin
                  else tar_shards(_split_shards(directory, entry.split)))
    else:
        classnames, shards = image_folder_shards(directory, entry.split)
    templates = entry.templates
    if not templates:
        try:
            templates = _read_lines(_join(directory, "templates.txt"))
        except FileNotFoundError:
            templates = list(DEFAULT_TEMPLATES)
    return Source(key, shards, entry.weight, "class", classnames=tuple(classnames), templates=tuple(templates))


def image_folder_shards(directory: str, split: str = "train") -> tuple[list[str], list[Shard]]:
    """(class names, record shards) of an ImageFolder tree `<directory>[/<split>]/<class>/<image>`."""
    root = os.path.join(directory, split) if os.path.isdir(os.path.join(directory, split)) else directory
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    records = [(os.path.join(root, c, f), "", label, f"{c}/{f}")
               for label, c in enumerate(classes)
               for f in sorted(os.listdir(os.path.join(root, c))) if f.lower().endswith(IMAGE_EXTS)]
    if not records:
        raise FileNotFoundError(f"{root!r} has no class sub-folders with images (nor a classnames.txt)")
    return classes, record_shards(records, root)
