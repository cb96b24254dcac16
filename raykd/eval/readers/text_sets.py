"""Readers for text-only sets: MS MARCO passage ranking, Wiki Sections triplets, word-similarity pairs."""
from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raykd.eval.readers._files import names_file, open_text


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


@names_file("MS MARCO qrels (qid 0 pid relevance)")
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


@names_file("triplet CSV")
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


_SCORE_HEADERS = ("simlex999", "human (mean)", "score", "similarity", "sim", "rating", "mean")


def _split_fields(line: str) -> list[str]:
    """Fields of a word-pair line: split on the first of tab, ``;`` or ``,`` it contains, else on whitespace."""
    delimiter = next((d for d in ("\t", ";", ",") if d in line), None)
    return [p.strip() for p in (line.split(delimiter) if delimiter else line.split())]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_word_pairs(path: str | Path) -> WordPairs:
    """Word pairs with a human similarity score, in the published layouts: ``word1;word2;score`` (RG65),
    tab-separated (``EN-RG-65.txt``; ``SimLex-999.txt`` with its header, whose ``SimLex999`` column is the
    score), comma-separated with a header (WordSim-353 ``combined.csv``: ``Word 1,Word 2,Human (mean)``) or
    whitespace-separated. Blank lines and ``#`` comments are skipped. A first line whose third field is not a
    number is a header; its column named SimLex999 / Human (mean) / score / similarity picks the score
    (default: the third field). Raises ValueError naming the file and line of a bad line."""
    with open_text(path, "word-similarity file") as f:
        lines = [(n, line.strip()) for n, line in enumerate(f, start=1)
                 if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no word pairs")
    column, header = 2, _split_fields(lines[0][1])
    if len(header) >= 3 and not _is_number(header[2]):
        names = [h.lower() for h in header]
        column = next((names.index(h) for h in _SCORE_HEADERS if h in names), 2)
        lines = lines[1:]
    words1, words2, scores = [], [], []
    for n, line in lines:
        parts = _split_fields(line)
        try:
            score = float(parts[column])
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{n}: expected 'word1;word2;score' (or tab/comma-separated), "
                             f"got {line!r}") from None
        words1.append(parts[0])
        words2.append(parts[1])
        scores.append(score)
    return WordPairs(words1, words2, np.asarray(scores, dtype=np.float64))
