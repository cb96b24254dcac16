"""Readers for text-only sets: MS MARCO passage ranking, Wiki Sections triplets, word-similarity pairs."""
from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raykd.eval.readers._files import open_text


# ---------------------------------------------------------------------------------------------- MS MARCO
def iter_collection(path: str | Path) -> Iterator[tuple[str, str]]:
    """Stream ``collection.tsv`` (``pid<TAB>passage``) as ``(pid, passage)`` without loading it whole."""
    with open_text(path, "MS MARCO collection") as f:
        for line in f:
            pid, _, text = line.rstrip("\r\n").partition("\t")
            if pid:
                yield pid, text


def read_queries(path: str | Path) -> dict[str, str]:
    """``queries.dev.small.tsv`` (``qid<TAB>query``) -> ``{qid: query}``."""
    with open_text(path, "MS MARCO queries") as f:
        return {qid: text for qid, _, text in (line.rstrip("\r\n").partition("\t") for line in f) if qid}


def read_qrels(path: str | Path) -> dict[str, set[str]]:
    """``qrels.dev.tsv`` (``qid 0 pid 1``, tab- or space-separated) -> ``{qid: {relevant pids}}``;
    rows with relevance 0 are ignored."""
    qrels: dict[str, set[str]] = defaultdict(set)
    with open_text(path, "MS MARCO qrels") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and int(parts[3]) > 0:
                qrels[parts[0]].add(parts[2])
    return dict(qrels)


# ---------------------------------------------------------------------------------------------- Wiki Sections
@dataclass
class Triplets:
    anchors: list[str]
    positives: list[str]
    negatives: list[str]


def read_triplets_csv(path: str | Path) -> Triplets:
    """Wiki Sections triplet CSV with a ``Sentence1,Sentence2,Sentence3`` header (anchor, positive,
    negative; other columns are ignored)."""
    with open_text(path, "triplet CSV") as f:
        reader = csv.DictReader(f)
        missing = {"Sentence1", "Sentence2", "Sentence3"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (have {reader.fieldnames})")
        rows = list(reader)
    return Triplets([r["Sentence1"] for r in rows], [r["Sentence2"] for r in rows], [r["Sentence3"] for r in rows])


# ---------------------------------------------------------------------------------------------- word similarity
@dataclass
class WordPairs:
    words1: list[str]
    words2: list[str]
    scores: np.ndarray = field(repr=False)


def read_word_pairs(path: str | Path) -> WordPairs:
    """RG65 / SimLex999 / WordSim353 as ``word1;word2;score`` lines (tabs also accepted). Blank lines,
    ``#`` comments and a first-line header (non-numeric score) are skipped. Raises ValueError on a bad line."""
    words1, words2, scores = [], [], []
    with open_text(path, "word-similarity file") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in re.split(r"[;\t]", line.strip())]
            try:
                score = float(parts[2])
            except (IndexError, ValueError):
                if n == 1 and len(parts) >= 3:
                    continue  # header
                raise ValueError(f"{path}:{n}: expected 'word1;word2;score', got {line.strip()!r}") from None
            words1.append(parts[0])
            words2.append(parts[1])
            scores.append(score)
    return WordPairs(words1, words2, np.asarray(scores, dtype=np.float64))
