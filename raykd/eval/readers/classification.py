"""Readers for image classification sets: an ImageFolder tree or an ``.npz`` of uint8 arrays."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from raykd.eval.readers._files import names_file, require_dir, require_file

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_image_folder(folder: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """``<folder>/<class>/<image>`` -> (paths, int64 labels ``[N]``, class folder names).

    Classes are the sorted sub-folder names (torchvision's ImageFolder order).
    """
    folder = require_dir(folder, "image folder")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), classes


@names_file("classification split (an .npz with 'images' and 'labels')")
def read_npz_split(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An ``.npz`` with ``images`` (uint8 ``[N, H, W, 3]``) and ``labels`` (int ``[N]``)."""
    with np.load(require_file(path, "classification split")) as data:
        return data["images"], data["labels"].astype(np.int64)


def read_lines(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a text file (class names, templates)."""
    with open(require_file(path), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
