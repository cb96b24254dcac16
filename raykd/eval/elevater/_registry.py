"""The ELEVATER data-set registry: one :class:`ElevaterDataset` per data set, filled by
``register_dataset`` when ``raykd.eval.elevater.catalogue`` is imported.

A spec mirrors one entry of ELEVATER's dataset manifest (``vision_benchmark/resources/datasets/
vision_datasets.json`` in Elevater_Toolkit_IC): the root folder under the data root, the index file and the
zip files of each split, the label map, the task type, plus what the evaluation needs on top (the metric, the
prompt templates and, where typed out here, the class names used in prompts).

Specs are frozen dataclasses, so a work item carries its spec to a Ray actor (a data set registered at run
time works there too).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

METRICS = ("accuracy", "mean-per-class", "11point_mAP", "roc_auc")  # ELEVATER's TEST.METRIC names
FORMATS = ("iris", "coco")


@dataclass(frozen=True)
class SplitFiles:
    """One split on disk: its index file and the files it needs (``files_for_local_usage``), both relative
    to the data set's root folder."""

    index: str
    zips: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return (self.index, *self.zips)


@dataclass(frozen=True)
class ElevaterDataset:
    """What ELEVATER knows about one image-classification data set.

    ``name`` is the ELEVATER id (the leaderboard's ``dataset_name``). ``classnames`` are the names put into
    the prompt templates, in label order; ``None`` means they are read from the label map (``labels.txt``,
    or the COCO json's categories) when the data set is loaded. ``search_shots``: for full-shot runs, tune
    hyper-parameters on a k-shot subset and train the final classifier on everything (ELEVATER does this
    for patch-camelyon). ``center_crop=False`` (kitti-distance) resizes the whole image to the input square
    instead of resizing its shorter side and cropping the centre.
    """

    name: str
    root_folder: str
    num_classes: int
    metric: str
    templates: tuple[str, ...]
    train: SplitFiles
    test: SplitFiles
    val: SplitFiles | None = None
    labelmap: str | None = "labels.txt"
    multilabel: bool = False
    format: str = "iris"
    classnames: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    search_shots: int | None = None
    num_test: int | None = None  # the manifest's test-set size (informational)
    builtin: str | None = None  # the raykd built-in set whose images this is written from
    center_crop: bool = True  # the toolkit's DATASET.CENTER_CROP: False resizes the whole image to a square

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"{self.name}: unknown metric {self.metric!r}; choose from {METRICS}")
        if self.format not in FORMATS:
            raise ValueError(f"{self.name}: unknown format {self.format!r}; choose from {FORMATS}")
        if self.format == "iris" and not self.labelmap:
            raise ValueError(f"{self.name}: an iris-format data set needs a label map file")
        if self.classnames is not None and len(self.classnames) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.classnames)} class names for {self.num_classes} classes")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ValueError(f"{self.name}: every prompt template needs a '{{}}' placeholder")

    @property
    def classnames_source(self) -> str:
        """Where the prompt class names come from: ``registry``, ``labels.txt`` (the label map) or ``json``."""
        if self.classnames is not None:
            return "registry"
        return self.labelmap if self.format == "iris" else "json categories"

    def split(self, name: str) -> SplitFiles:
        """``train`` | ``val`` | ``test``. Raises ValueError for an unknown or absent split."""
        files = {"train": self.train, "val": self.val, "test": self.test}.get(name)
        if files is None:
            raise ValueError(f"{self.name} has no {name!r} split")
        return files


_DATASETS: dict[str, ElevaterDataset] = {}
_ALIASES: dict[str, str] = {}


def register_dataset(spec: ElevaterDataset) -> ElevaterDataset:
    """Add ``spec`` (and its aliases). Raises ValueError if the name or an alias is taken by another spec."""
    for key in (spec.name, *spec.aliases):
        owner = _ALIASES.get(key)
        if owner is not None and _DATASETS[owner] != spec:
            raise ValueError(f"ELEVATER data set name {key!r} is already registered for {owner!r}")
    _DATASETS[spec.name] = spec
    for key in (spec.name, *spec.aliases):
        _ALIASES[key] = spec.name
    return spec


def get_dataset(name: str) -> ElevaterDataset:
    """The spec registered as ``name`` or an alias of it (e.g. ``cifar10`` for ``cifar-10``).

    Raises ValueError naming close matches.
    """
    key = name if name in _ALIASES else name.lower()
    if key not in _ALIASES:
        close = difflib.get_close_matches(key, list(_ALIASES), n=3)
        raise ValueError(f"unknown ELEVATER data set {name!r}; did you mean {close}? known: {list_datasets()}")
    return _DATASETS[_ALIASES[key]]


def list_datasets(*, builtin: bool | None = None) -> list[str]:
    """Registered ids in registration order; ``builtin=False`` only ELEVATER's own, ``True`` only raykd's."""
    return [n for n, s in _DATASETS.items() if builtin is None or (s.builtin is not None) == builtin]
