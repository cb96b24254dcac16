"""The built-in data sets (``shapes``, ``digits``) in the evaluation ``data_root`` layout, so every image task
runs on them out of the box.

For built-in set ``<name>`` the *evaluation view* is written under the built-in cache root (the folder that
holds ``<name>/`` from :mod:`raykd.data.builtin`, ``$RAYKD_CACHE/builtin`` by default)::

    classification/<name>/test.npz      the held-out split: images uint8 [N, H, W, 3] and labels int64 [N]
                                          (the same samples as <name>/test/ shards, decoded from their JPEGs)
    classification/<name>/train.npz     a training split for linear probe / k-NN: the first
                                          min(EVAL_TRAIN_SIZE, default train size) samples of the generator
    classification/<name>/classnames.txt, templates.txt, meta.json
    retrieval/<name>.tsv                filepath<TAB>caption, one row per held-out sample
    retrieval/<name>/<key>.jpg          the held-out images (the shards' JPEG bytes)

so ``zeroshot``, ``linear_probe``, ``knn`` and ``clustering`` find ``<name>`` as a classification set and
``retrieval`` and ``feature_analysis`` as a caption set (see :mod:`raykd.eval.datasets`). Text-only tasks have
no built-in data.

Views are generated deterministically on first use, each piece written to a temporary sibling and renamed into
place; ``classification/<name>/meta.json`` is written last and marks a complete view, so concurrent callers are
safe (identical content; a loser of a rename race keeps the winner's copy).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from raykd.data.builtin import default_root, list_builtin
from raykd.data.synthetic import BUILTIN_SETS, SyntheticSet

EVAL_TRAIN_SIZE = 2048  # cap on the linear-probe / k-NN training split (keeps both fast on a CPU)
EVAL_VIEW_VERSION = 1  # bump when the view's layout or content changes; older views are then regenerated


def _meta(spec: SyntheticSet) -> dict:
    return {"name": spec.name, "version": spec.version, "eval_view_version": EVAL_VIEW_VERSION,
            "train_size": min(EVAL_TRAIN_SIZE, spec.default_train_size), "test_size": spec.test_size}


def _paths(root: Path, name: str) -> dict[str, Path]:
    return {"images": root / "retrieval" / name, "tsv": root / "retrieval" / f"{name}.tsv",
            "classification": root / "classification" / name}


def is_current(root: str | Path, name: str) -> bool:
    """Whether ``root`` holds a complete, up-to-date evaluation view of built-in set ``name``."""
    paths = _paths(Path(root), name)
    try:
        meta = json.loads((paths["classification"] / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta == _meta(BUILTIN_SETS[name]) and paths["tsv"].is_file() and paths["images"].is_dir()


def _decode(jpg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpg)) as img:
        return np.asarray(img.convert("RGB"))


def _write_npz(samples: Iterable[dict], path: Path) -> None:
    images, labels = [], []
    for sample in samples:
        images.append(_decode(sample["jpg"]))
        labels.append(int(sample["cls"]))
    np.savez_compressed(path, images=np.stack(images), labels=np.asarray(labels, dtype=np.int64))


def _held_out(spec: SyntheticSet, image_dir: Path, rows: list[str]) -> Iterator[dict]:
    """The held-out samples, writing each JPEG into ``image_dir`` and its TSV row into ``rows`` on the way."""
    for sample in spec.samples("test", spec.test_size):
        (image_dir / f"{sample['__key__']}.jpg").write_bytes(sample["jpg"])
        rows.append(f"{spec.name}/{sample['__key__']}.jpg\t{sample['txt']}\n")
        yield sample


def _generate(spec: SyntheticSet, tmp: Path) -> None:
    """The three pieces of the view into ``tmp`` (``images/``, ``captions.tsv``, ``classification/``)."""
    (tmp / "images").mkdir(parents=True)
    (tmp / "classification").mkdir()
    rows = ["filepath\tcaption\n"]
    _write_npz(_held_out(spec, tmp / "images", rows), tmp / "classification" / "test.npz")
    _write_npz(spec.samples("train", _meta(spec)["train_size"]), tmp / "classification" / "train.npz")
    (tmp / "captions.tsv").write_text("".join(rows), encoding="utf-8")
    (tmp / "classification" / "classnames.txt").write_text("\n".join(spec.classnames) + "\n")
    (tmp / "classification" / "templates.txt").write_text("\n".join(spec.templates) + "\n")
    (tmp / "classification" / "meta.json").write_text(json.dumps(_meta(spec), indent=1) + "\n")


def _move_aside(path: Path, tag: str) -> None:
    """Remove a stale file or folder: renamed away first (atomic), then deleted."""
    if not path.exists():
        return
    aside = path.with_name(f".{path.name}.stale-{tag}")
    try:
        os.rename(path, aside)
    except OSError:
        return  # another process moved or replaced it first
    shutil.rmtree(aside, ignore_errors=True) if aside.is_dir() else aside.unlink(missing_ok=True)


def _place(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; an existing folder at ``dst`` (another process's identical copy) is kept."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst) if src.is_file() else os.rename(src, dst)
    except OSError:
        if not dst.exists():
            raise


def ensure_view(name: str, root: str | Path | None = None) -> Path:
    """Write the evaluation view of built-in set ``name`` under ``root`` (default :func:`default_root`) if it
    is missing or stale; returns ``root``. Raises ValueError for an unknown name (listing the valid ones)."""
    if name not in BUILTIN_SETS:
        raise ValueError(f"unknown built-in data set {name!r}; valid names: {', '.join(list_builtin())}")
    root = Path(root) if root else default_root()
    if is_current(root, name):
        return root
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    paths = _paths(root, name)
    for path in paths.values():  # an older (or partial) view: cleared before the new one goes in
        _move_aside(path, tag)
    tmp = root / f".eval-{name}.tmp-{tag}"
    try:
        _generate(BUILTIN_SETS[name], tmp)
        _place(tmp / "images", paths["images"])
        _place(tmp / "captions.tsv", paths["tsv"])
        _place(tmp / "classification", paths["classification"])  # its meta.json marks the view complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not is_current(root, name):
        raise RuntimeError(f"could not write the {name} evaluation view under {root}")
    return root


def is_builtin_cache(root: str | Path) -> bool:
    """Whether ``root`` is a built-in cache: the default one, or a folder holding a generated built-in set
    (``<name>/meta.json`` or ``<name>-train<N>/meta.json``) or an evaluation view of one."""
    root = Path(root)
    if root.resolve() == default_root().resolve():
        return True
    return any(any(root.glob(f"{name}*/meta.json")) or (root / "classification" / name / "meta.json").is_file()
               for name in list_builtin())


def prepare_data_root(data_root: str | Path | None = None, *, builtin_root: str | Path | None = None,
                      names: Sequence[str] | None = None) -> Path:
    """The data root to evaluate on, with built-in evaluation views written where they belong.

    - ``data_root`` empty: the built-in cache ``builtin_root`` (default :func:`default_root`), with the views
      of ``names`` (default: every built-in set) written there.
    - ``data_root`` given: used as is; the views of ``names`` are written there only when it is a built-in
      cache (:func:`is_builtin_cache`) or when ``names`` was given explicitly (a caller that asked for them).

    Raises FileNotFoundError for a ``data_root`` that is not a folder, ValueError for an unknown name.
    """
    explicit = names is not None
    names = list_builtin() if names is None else list(names)
    if not data_root:
        root = Path(builtin_root) if builtin_root else default_root()
    else:
        root = Path(data_root)
        if not root.is_dir():
            raise FileNotFoundError(f"evaluation data root not found: {root}")
        if not (explicit or is_builtin_cache(root)):
            return root
    for name in names:
        ensure_view(name, root)
    return root
