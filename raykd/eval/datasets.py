"""Where each evaluation set lives under ``data_root``, and how it is loaded for the evaluation engine.

Every task declares a data *kind* (``@register_task(name, data_kind=kind)``); a kind knows its data sets'
on-disk locations (relative to ``data_root``) and loads one into a dataclass whose field names are the
task functions' parameter names::

    kind            dataset name            location under <data_root>
    classification  <name>                  classification/<name>/{train,test}/<class>/<image>  (ImageFolder)
                                              or classification/<name>/{train,test}.npz (images uint8 [N,H,W,3], labels)
                                              + optional classnames.txt (label order), templates.txt
                                              (default: the registered templates for <name>, else "a photo of a {}.")
    captions        mscoco_2017             mscoco/annotations/captions_val2017.json, images in mscoco/val2017/
                    mscoco_2014             mscoco/annotations/captions_val2014.json, images in mscoco/val2014/
                    coco_karpathy           karpathy/dataset_coco.json (test split), images in mscoco/<filepath>/
                    flickr30k_karpathy      karpathy/dataset_flickr30k.json (test split),
                                              images in flickr30k/flickr30k-images/
                    <name>                  retrieval/<name>.tsv (image path relative to retrieval/, caption)
    sts             STS12 .. STS16          SentEval/data/downstream/STS/STS1X-en-test/STS.{input,gs}.<subset>.txt
                    STSBenchmark            SentEval/data/downstream/STS/STSBenchmark/sts-test.csv
                                              or stsbenchmark/stsbenchmark.tsv.gz (test split)
                    STSBenchmark-dev        .../STSBenchmark/sts-dev.csv or stsbenchmark.tsv.gz (dev split)
                    SICKRelatedness         SentEval/data/downstream/SICK/SICK_test_annotated.txt or SICK/SICK.txt
    passages        msmarco                 msmarco/{collection.tsv, queries.dev.small.tsv, qrels.dev.tsv}
    triplets        wikisections            wikisections/test.csv
    word_pairs      RG65, SimLex999,        word_similarity/<name>.txt (or .csv): "word1;word2;score" lines or
                    WordSim353                the published tab / comma layouts (see readers.read_word_pairs)

The built-in ``shapes`` and ``digits`` sets are written in this layout (classification + captions) by
:mod:`raykd.eval.builtin`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raykd.eval import readers
from raykd.eval.readers._files import require_file
from raykd.eval.templates import templates_for

STS_DIR = Path("SentEval/data/downstream/STS")


@dataclass
class ClassificationData:
    """``images``/``labels`` are the evaluation split, ``train_*`` the training split."""
    images: Any
    labels: np.ndarray
    train_images: Any
    train_labels: np.ndarray
    classnames: list[str]
    templates: list[str]


@dataclass
class STSData:
    pairs: dict[str, readers.SentencePairs]


@dataclass
class PassageData:
    collection: Path  # streamed by the task
    queries: dict[str, str]
    qrels: dict[str, set[str]]


@dataclass(frozen=True)
class DataKind:
    known: Callable[[Path], list[str]]  # data set names present under the root
    load: Callable[[Path, str], Any]  # (root, name) -> data; FileNotFoundError names a missing path
    names: tuple[str, ...] = ()  # fixed names this kind always claims, present or not


def _first_existing(root: Path, *candidates: str) -> Path:
    """The first candidate that exists under root, else the first one (so the error names it)."""
    return next((root / c for c in candidates if (root / c).exists()), root / candidates[0])


# ---------------------------------------------------------------------------------------------- classification
def _classification_split(folder: Path, split: str) -> tuple[Any, np.ndarray, list[str] | None]:
    if (folder / f"{split}.npz").is_file():
        images, labels = readers.read_npz_split(folder / f"{split}.npz")
        return images, labels, None
    return readers.read_image_folder(folder / split)


def load_classification(root: Path, name: str) -> ClassificationData:
    folder = root / "classification" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"classification data set not found: {folder}")
    train_images, train_labels, classes = _classification_split(folder, "train")
    images, labels, _ = _classification_split(folder, "test")
    if (folder / "classnames.txt").is_file():
        classes = readers.read_lines(folder / "classnames.txt")
    if classes is None:
        raise FileNotFoundError(f"classnames file not found: {folder / 'classnames.txt'}")
    templates = (readers.read_lines(folder / "templates.txt") if (folder / "templates.txt").is_file()
                 else templates_for(name))
    return ClassificationData(images, labels, train_images, train_labels, [c.replace("_", " ") for c in classes],
                              templates)


def _classification_names(root: Path) -> list[str]:
    folder = root / "classification"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------------- captions
_CAPTION_SETS = {
    "mscoco_2017": (readers.read_coco_captions, "mscoco/annotations/captions_val2017.json", "mscoco/val2017"),
    "mscoco_2014": (readers.read_coco_captions, "mscoco/annotations/captions_val2014.json", "mscoco/val2014"),
    "coco_karpathy": (readers.read_karpathy, "karpathy/dataset_coco.json", "mscoco"),
    "flickr30k_karpathy": (readers.read_karpathy, "karpathy/dataset_flickr30k.json", "flickr30k/flickr30k-images"),
}


def load_captions(root: Path, name: str) -> readers.CaptionData:
    if name in _CAPTION_SETS:
        read, annotations, images = _CAPTION_SETS[name]
        return read(root / annotations, root / images)
    return readers.read_caption_tsv(root / "retrieval" / f"{name}.tsv")


def _caption_names(root: Path) -> list[str]:
    fixed = [n for n, (_, ann, _) in _CAPTION_SETS.items() if (root / ann).is_file()]
    return fixed + sorted(p.stem for p in (root / "retrieval").glob("*.tsv"))


# ---------------------------------------------------------------------------------------------- STS
_STS_YEARS = {f"STS{y}": STS_DIR / f"STS{y}-en-test" for y in range(12, 17)}
_STS_FILES = {
    "STSBenchmark": (str(STS_DIR / "STSBenchmark/sts-test.csv"), "stsbenchmark/stsbenchmark.tsv.gz"),
    "STSBenchmark-dev": (str(STS_DIR / "STSBenchmark/sts-dev.csv"), "stsbenchmark/stsbenchmark.tsv.gz"),
    "SICKRelatedness": ("SentEval/data/downstream/SICK/SICK_test_annotated.txt", "SICK/SICK.txt"),
}


def load_sts(root: Path, name: str) -> STSData:
    if name in _STS_YEARS:
        return STSData(readers.read_senteval_sts(root / _STS_YEARS[name]))
    path = _first_existing(root, *_STS_FILES[name])
    if name == "SICKRelatedness":
        return STSData(readers.read_sick(path))
    split = "dev" if name.endswith("-dev") else "test"  # ITRA reports STS-B on both
    read = readers.read_stsb_tsv_gz if path.suffix == ".gz" else readers.read_stsb_csv
    return STSData(read(path, split))


def _sts_names(root: Path) -> list[str]:
    years = [n for n, d in _STS_YEARS.items() if (root / d).is_dir()]
    return years + [n for n, files in _STS_FILES.items() if any((root / f).is_file() for f in files)]


# ---------------------------------------------------------------------------------------------- text sets
def load_passages(root: Path, name: str) -> PassageData:
    folder = root / name
    collection = require_file(folder / "collection.tsv", "MS MARCO collection")
    return PassageData(collection, readers.read_queries(folder / "queries.dev.small.tsv"),
                       readers.read_qrels(folder / "qrels.dev.tsv"))


def load_triplets(root: Path, name: str) -> readers.Triplets:
    return readers.read_triplets_csv(root / name / "test.csv")


_WORD_SETS = ("RG65", "SimLex999", "WordSim353")


def load_word_pairs(root: Path, name: str) -> readers.WordPairs:
    return readers.read_word_pairs(_first_existing(root, f"word_similarity/{name}.txt", f"word_similarity/{name}.csv"))


def _present(*pairs: tuple[str, str]) -> Callable[[Path], list[str]]:
    return lambda root: [name for name, path in pairs if (root / path).exists()]


KINDS: dict[str, DataKind] = {
    "classification": DataKind(_classification_names, load_classification),
    "captions": DataKind(_caption_names, load_captions, tuple(_CAPTION_SETS)),
    "sts": DataKind(_sts_names, load_sts, (*_STS_YEARS, *_STS_FILES)),
    "passages": DataKind(_present(("msmarco", "msmarco/collection.tsv")), load_passages, ("msmarco",)),
    "triplets": DataKind(_present(("wikisections", "wikisections/test.csv")), load_triplets, ("wikisections",)),
    "word_pairs": DataKind(lambda root: [n for n in _WORD_SETS if any(
        (root / f"word_similarity/{n}{ext}").is_file() for ext in (".txt", ".csv"))], load_word_pairs, _WORD_SETS),
}


def get_kind(kind: str) -> DataKind:
    """Raises ValueError for an unknown data kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind]


def find_datasets(kind: str, data_root: str | Path) -> list[str]:
    """Names of the ``kind`` data sets present under ``data_root``."""
    return get_kind(kind).known(Path(data_root))


def claims(kind: str, data_root: str | Path, name: str) -> bool:
    """Whether ``name`` is a ``kind`` data set (a fixed name, or one present under ``data_root``)."""
    return name in get_kind(kind).names or name in find_datasets(kind, data_root)


def load_dataset(kind: str, data_root: str | Path, name: str) -> Any:
    """Load data set ``name`` of ``kind`` from ``data_root``; FileNotFoundError names a missing path."""
    return get_kind(kind).load(Path(data_root), name)
