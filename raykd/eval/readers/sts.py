"""Readers for semantic textual similarity sets: SentEval STS12-16, STS-Benchmark, SICK-R.

Each returns ``dict[subset, SentencePairs]``; single-subset sets use their split's name (``"test"``, ``"dev"``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raykd.eval.readers._files import names_file, naming_file, open_text, require_dir, require_file


@dataclass
class SentencePairs:
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray = field(repr=False)  # float [n] gold similarity

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not len(self.sentences1) == len(self.sentences2) == len(self.scores):
            raise ValueError("sentences1, sentences2 and scores differ in length")


def _lines(path: Path) -> list[str]:
    with open_text(path) as f:
        return f.read().splitlines()


def read_senteval_sts(folder: str | Path) -> dict[str, SentencePairs]:
    """A SentEval STS year folder (e.g. ``STS/STS12-en-test``): every ``STS.input.<subset>.txt`` (tab-
    separated sentence pairs) with its ``STS.gs.<subset>.txt`` (one gold score a line; pairs whose gold
    line is empty are skipped, as SentEval does)."""
    folder = require_dir(folder, "SentEval STS folder")
    inputs = sorted(folder.glob("STS.input.*.txt"))
    if not inputs:
        raise FileNotFoundError(f"no STS.input.<subset>.txt files in {folder}")
    out = {}
    for path in inputs:
        subset = path.name[len("STS.input."):-len(".txt")]
        gold_path = require_file(folder / f"STS.gs.{subset}.txt", "STS gold file")
        pairs = [line.split("\t") for line in _lines(path)]
        gold = _lines(gold_path)
        if len(gold) != len(pairs):
            raise ValueError(f"{path} has {len(pairs)} lines but its gold file has {len(gold)}")
        keep = [i for i, g in enumerate(gold) if g.strip()]
        with naming_file(path, "STS input file (sentence1<TAB>sentence2 lines)"):
            first, second = [pairs[i][0] for i in keep], [pairs[i][1] for i in keep]
        with naming_file(gold_path, "STS gold file (one score a line)"):
            scores = [float(gold[i]) for i in keep]
        out[subset] = SentencePairs(first, second, scores)
    return out


@names_file("STS-B file")
def read_stsb_csv(path: str | Path, split: str = "test") -> dict[str, SentencePairs]:
    """STS-Benchmark ``sts-test.csv`` / ``sts-dev.csv`` (the file is the split; ``split`` names it):
    tab-separated, score in column 4, sentences in columns 5 and 6 (0-based; later columns, when present,
    are ignored)."""
    rows = [line.split("\t") for line in _lines(require_file(path, "STS-B file")) if line.strip()]
    return {split: SentencePairs([r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows])}


@names_file("STS-B file")
def read_stsb_tsv_gz(path: str | Path, split: str = "test") -> dict[str, SentencePairs]:
    """sentence-transformers' ``stsbenchmark.tsv.gz``: header ``split genre dataset year sid score
    sentence1 sentence2``; keeps the rows of ``split`` (``train``, ``dev`` or ``test``). Raises ValueError
    when no row is of ``split``."""
    with open_text(path, "STS-B file") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r["split"] == split]
    if not rows:
        raise ValueError(f"{path}: no row of split {split!r}")
    return {split: SentencePairs([r["sentence1"] for r in rows], [r["sentence2"] for r in rows],
                                  [float(r["score"]) for r in rows])}


@names_file("SICK file")
def read_sick(path: str | Path, split: str = "TEST") -> dict[str, SentencePairs]:
    """SICK-R: ``SICK_test_annotated.txt`` or the full ``SICK.txt`` (tab-separated with a header naming
    ``sentence_A``, ``sentence_B``, ``relatedness_score``; a ``SemEval_set`` column, when present, is
    filtered to ``split``)."""
    with open_text(path, "SICK file") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    missing = {"sentence_A", "sentence_B", "relatedness_score"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    rows = [r for r in rows if r.get("SemEval_set", split) == split]
    return {"test": SentencePairs([r["sentence_A"] for r in rows], [r["sentence_B"] for r in rows],
                                  [float(r["relatedness_score"]) for r in rows])}
