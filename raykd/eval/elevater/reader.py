"""Read an ELEVATER data set from its on-disk layout, images straight out of the zips.

Layout (ELEVATER's dataset manifest, the ``vision-datasets`` package's "iris" and "coco" formats), relative
to ``<data_root>/<spec.root_folder>/``:

- label map (iris): ``labels.txt`` (``labelmap.txt`` for gtsrb), one class name per line, line i = label i;
- iris index: one image per line, ``<image> <labels>``, the image as ``<zip>@<path inside the zip>`` (or a
  plain path), the labels comma-separated class ids (``train.zip@train/00001.png 3``,
  ``train.zip@JPEGImages/x.jpg 3,7``); no label = a negative image (multi-label sets);
- coco index: ``{"images": [{"id", "file_name", "zip_file"?}], "annotations": [{"image_id",
  "category_id"}], "categories": [{"id", "name"}]}``, categories ordered by id give the class ids; a
  ``zip_file`` is prefixed to ``file_name`` as ``<zip_file>@<file_name>``.

A data set with a missing file fails with FileNotFoundError naming every missing path (:func:`check_files`).
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from raykd.eval.elevater._registry import ElevaterDataset


# ---------------------------------------------------------------------------------------------- images
class ZipImages(Sequence):
    """Lazily decoded RGB images (uint8 ``[H, W, 3]``) named by ELEVATER image paths relative to ``folder``.

    Indexing with an int gives one array; a slice or a list of ints gives a list (so it can be passed to
    ``raykd.eval.features.extract_image_features`` as is). Zip handles are opened on first use, one per zip
    and process, and are not pickled.
    """

    def __init__(self, folder: str | Path, paths: Sequence[str]):
        self.folder, self.paths = Path(folder), list(paths)
        self._zips: dict[str, zipfile.ZipFile] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any):
        if isinstance(index, slice):
            return [self.read(p) for p in self.paths[index]]
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.read(self.paths[int(i)]) for i in index]
        return self.read(self.paths[index])

    def subset(self, indices: Sequence[int]) -> "ZipImages":
        """The images at ``indices`` (sharing this object's open zips)."""
        out = ZipImages(self.folder, [self.paths[int(i)] for i in indices])
        out._zips = self._zips
        return out

    def read_bytes(self, path: str) -> bytes:
        """The stored bytes of one image. Raises FileNotFoundError naming the zip member or file."""
        zip_name, sep, member = path.partition("@")
        if not sep:
            file = self.folder / path
            if not file.is_file():
                raise FileNotFoundError(f"image not found: {file}")
            return file.read_bytes()
        if zip_name not in self._zips:
            zip_path = self.folder / zip_name
            if not zip_path.is_file():
                raise FileNotFoundError(f"zip file not found: {zip_path}")
            self._zips[zip_name] = zipfile.ZipFile(zip_path)
        try:
            return self._zips[zip_name].read(member)
        except KeyError:
            raise FileNotFoundError(f"{member!r} not found in {self.folder / zip_name}") from None

    def read(self, path: str) -> np.ndarray:
        with Image.open(io.BytesIO(self.read_bytes(path))) as img:
            return np.asarray(img.convert("RGB"))

    def close(self) -> None:
        for handle in self._zips.values():
            handle.close()
        self._zips.clear()

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"], state["paths"])


# ---------------------------------------------------------------------------------------------- index files
def read_labelmap(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a label map. Raises FileNotFoundError naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label map not found: {path}")
    return [s for s in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()) if s]


def read_iris_index(path: str | Path) -> tuple[list[str], list[list[int]]]:
    """An iris index file -> (image paths, class ids per image). Raises ValueError naming a bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file not found: {path}")
    images, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        image, _, label = line.rpartition(" ") if " " in line else (line, "", "")
        try:
            labels.append([int(x) for x in label.split(",")] if label else [])
        except ValueError:
            raise ValueError(f"{path}:{number}: bad label field {label!r}") from None
        images.append(image)
    return images, labels


def read_coco_index(path: str | Path) -> tuple[list[str], list[list[int]], list[str]]:
    """A COCO classification json -> (image paths, class ids per image, class names by category id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file not found: {path}")
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        position = {c["id"]: i for i, c in enumerate(categories)}
        images = sorted(coco["images"], key=lambda img: img["id"])
        row = {img["id"]: i for i, img in enumerate(images)}
        labels: list[list[int]] = [[] for _ in images]
        for ann in coco["annotations"]:
            labels[row[ann["image_id"]]].append(position[ann["category_id"]])
        paths = [f"{img['zip_file']}@{img['file_name']}" if img.get("zip_file") else img["file_name"] for img in images]
        return paths, labels, [c["name"] for c in categories]
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    except (KeyError, TypeError) as err:  # a missing field, or an annotation naming an unknown image/category
        raise ValueError(f"{path}: not a COCO classification index (missing or unknown {err})") from None


# ---------------------------------------------------------------------------------------------- data sets
@dataclass
class ElevaterSplit:
    """One split: lazily read ``images`` and ``labels`` (class ids per image; one for multi-class sets)."""
    images: ZipImages
    labels: list[list[int]]
    num_classes: int
    multilabel: bool

    def __len__(self) -> int:
        return len(self.images)

    @property
    def targets(self) -> np.ndarray:
        """int64 ``[N]`` class ids (multi-class) or float32 multi-hot ``[N, C]`` (multi-label)."""
        if self.multilabel:
            out = np.zeros((len(self.labels), self.num_classes), dtype=np.float32)
            for i, ids in enumerate(self.labels):
                out[i, ids] = 1.0
            return out
        return np.asarray([ids[0] for ids in self.labels], dtype=np.int64)

    def subset(self, indices: Sequence[int]) -> "ElevaterSplit":
        return ElevaterSplit(self.images.subset(indices), [self.labels[int(i)] for i in indices],
                             self.num_classes, self.multilabel)


@dataclass
class ElevaterData:
    """A loaded data set: its spec, prompt class names (and where they came from) and splits."""
    spec: ElevaterDataset
    classnames: list[str]
    classnames_source: str
    splits: dict[str, ElevaterSplit]
    knowledge: dict[str, list[str]] | None = None  # class name -> knowledge texts for the prompts (``knowledge``)

    @property
    def train(self) -> ElevaterSplit:
        return self.splits["train"]

    @property
    def test(self) -> ElevaterSplit:
        return self.splits["test"]


def dataset_folder(data_root: str | Path, spec: ElevaterDataset) -> Path:
    return Path(data_root) / spec.root_folder


def missing_files(data_root: str | Path, spec: ElevaterDataset,
                  splits: Sequence[str] = ("train", "test")) -> list[Path]:
    """Files the manifest names for ``splits`` (and the label map) that are absent, in manifest order."""
    folder = dataset_folder(data_root, spec)
    names = [spec.labelmap] if spec.labelmap else []
    for split in splits:
        names += [n for n in spec.split(split).files if n not in names]
    return [folder / n for n in names if not (folder / n).is_file()]


def check_files(data_root: str | Path, spec: ElevaterDataset, splits: Sequence[str] = ("train", "test")) -> None:
    """Raises FileNotFoundError naming every missing file of ``splits`` of ``spec`` under ``data_root``."""
    missing = missing_files(data_root, spec, splits)
    if missing:
        folder = dataset_folder(data_root, spec)
        what = "not found" if not folder.is_dir() else "incomplete"
        raise FileNotFoundError(f"ELEVATER data set {spec.name!r} {what}: missing "
                                + ", ".join(str(p) for p in missing))


def _normalise(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def resolve_classnames(spec: ElevaterDataset, labelmap: list[str] | None) -> tuple[list[str], str]:
    """Prompt class names in label order and their source. The label map on disk (when there is one) must
    have ``spec.num_classes`` entries, and must not list the registry's names in another order.

    Raises ValueError on a mismatch.
    """
    if labelmap is not None and len(labelmap) != spec.num_classes:
        raise ValueError(f"{spec.name}: the label map has {len(labelmap)} classes, ELEVATER's manifest "
                         f"says {spec.num_classes}")
    if spec.classnames is not None:
        if labelmap is not None:
            ours, theirs = [_normalise(n) for n in spec.classnames], [_normalise(n) for n in labelmap]
            if sorted(ours) == sorted(theirs) and ours != theirs:
                raise ValueError(f"{spec.name}: the label map lists the registry's class names in another order")
        return list(spec.classnames), "registry"
    if labelmap is None:
        raise ValueError(f"{spec.name}: no class names in the registry and no label map")
    return [n.replace("_", " ") for n in labelmap], spec.classnames_source


def load_dataset(data_root: str | Path, spec: ElevaterDataset,
                 splits: Sequence[str] = ("train", "test")) -> ElevaterData:
    """Read ``splits`` of ``spec`` under ``data_root`` (index files and label map now, images lazily).

    Raises FileNotFoundError naming every missing file; ValueError for a malformed index or label map
    (labels out of range, a multi-class image with other than one label, a class count mismatch).
    """
    check_files(data_root, spec, splits)
    folder = dataset_folder(data_root, spec)
    labelmap = read_labelmap(folder / spec.labelmap) if spec.format == "iris" else None
    out: dict[str, ElevaterSplit] = {}
    for split in splits:
        index = folder / spec.split(split).index
        if spec.format == "iris":
            paths, labels = read_iris_index(index)
        else:
            paths, labels, names = read_coco_index(index)
            labelmap = labelmap or names
        _check_labels(spec, index, labels)
        out[split] = ElevaterSplit(ZipImages(folder, paths), labels, spec.num_classes, spec.multilabel)
    classnames, source = resolve_classnames(spec, labelmap)
    return ElevaterData(spec, classnames, source, out)


def _check_labels(spec: ElevaterDataset, index: Path, labels: list[list[int]]) -> None:
    for row, ids in enumerate(labels):
        if any(not 0 <= i < spec.num_classes for i in ids):
            raise ValueError(f"{index}: image {row} has a label outside 0..{spec.num_classes - 1}: {ids}")
        if not spec.multilabel and len(ids) != 1:
            raise ValueError(f"{index}: image {row} of multi-class data set {spec.name!r} has labels {ids}")
