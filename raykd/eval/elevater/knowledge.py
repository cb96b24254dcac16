"""Knowledge-augmented prompts (K-LITE; Shen et al., 2022), as Elevater_Toolkit_IC's ``extract_text_features``
(``vision_benchmark/evaluation/feature.py``) builds them from its knowledge files.

The files are the toolkit's ``vision_benchmark/resources/knowledge/`` folder, copied to ``<data root>/knowledge/``:

    knowledge/external/<dataset>_knowledge.tsv   JSON list of {"classname", "def_wiki", "def_wn", "path_wn": [...]}
    knowledge/gpt3/GPT3_<dataset>.tsv            JSON list of {"classname", "gpt3": [text, ...]}

:class:`Knowledge` says which to use: ``source`` ``wiki`` (``KNOWLEDGE.WIKITIONARY.USE_DEFINITION``),
``wordnet`` (``WORDNET.USE_DEFINITION``) or ``wordnet_path`` (``WORDNET.USE_HIERARCHY``: the first 3 entries
of the hypernym path, space-joined) -- the toolkit reads them into one dictionary, so one at a time -- and
``gpt3`` items (``GPT3.USE_GPT3`` with ``AGGREGATION.NUM_GPT3_ITEMS``; ``WIKI_AND_GPT3`` aggregation, the
default). A class's knowledge texts ``k`` each become ``" " + " ".join(word_tokenize(" ; <class> , " + k))``
and the class's prompts are every template followed by each of them (texts outer, templates inner); a
class without knowledge keeps the plain templates. A text that is ``None`` (JSON null) becomes ``""``.

``word_tokenize`` is NLTK's (3.7: Punkt sentences, then ``NLTKWordTokenizer``) when ``nltk`` and its
``punkt`` data are installed. Otherwise :func:`word_tokenize` here: ``NLTKWordTokenizer``'s rules
(``nltk/tokenize/destructive.py``) on sentences split after ``.``/``?``/``!`` followed by white space and an
upper-case letter -- Punkt's decision in the common case, not in every case (abbreviations).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("wiki", "wordnet", "wordnet_path")
_FIELD = {"wiki": "def_wiki", "wordnet": "def_wn", "wordnet_path": "path_wn"}


@dataclass(frozen=True)
class Knowledge:
    """Which knowledge goes into the prompts: ``source`` (None, or one of ``SOURCES``) and ``gpt3`` items."""
    source: str | None = None
    gpt3: int = 0

    def __post_init__(self) -> None:
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"unknown knowledge source {self.source!r}; choose from {SOURCES}")
        if self.gpt3 < 0:
            raise ValueError(f"gpt3 knowledge items must be >= 0, got {self.gpt3}")

    @property
    def used(self) -> bool:
        return self.source is not None or self.gpt3 > 0


def knowledge_files(data_root: str | Path, dataset: str, knowledge: Knowledge) -> dict[str, Path]:
    """The files ``knowledge`` needs for ``dataset``: ``{"external": path, "gpt3": path}`` (those used)."""
    root = Path(data_root) / "knowledge"
    files = {}
    if knowledge.source is not None:
        files["external"] = root / "external" / f"{dataset}_knowledge.tsv"
    if knowledge.gpt3 > 0:
        files["gpt3"] = root / "gpt3" / f"GPT3_{dataset}.tsv"
    return files


def read_knowledge(data_root: str | Path, dataset: str, knowledge: Knowledge) -> dict[str, list[str]]:
    """``{class name: [knowledge text, ...]}`` in the toolkit's order (the definition, then GPT-3 items).

    Raises FileNotFoundError naming a missing file."""
    files = knowledge_files(data_root, dataset, knowledge)
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(f"knowledge file not found: {path} (copy Elevater_Toolkit_IC's "
                                    "vision_benchmark/resources/knowledge/ to <data root>/knowledge/)")
    out: dict[str, list[str]] = {}
    if "external" in files:
        for entry in json.loads(files["external"].read_text(encoding="utf-8")):
            value = entry[_FIELD[knowledge.source]]
            if knowledge.source == "wordnet_path" and len(value) > 0:
                value = " ".join(value[:min(3, len(value))])
            out[entry["classname"]] = [value]
    if "gpt3" in files:
        gpt3 = {e["classname"]: e["gpt3"] for e in json.loads(files["gpt3"].read_text(encoding="utf-8"))}
        for name, texts in gpt3.items():
            out.setdefault(name, []).extend(texts[:knowledge.gpt3])
    return out


def class_prompts(classnames: Sequence[str], templates: Sequence[str],
                  knowledge: dict[str, list[str]] | None = None) -> list[list[str]]:
    """Per class, its prompt texts (the module docstring says how knowledge extends them)."""
    out = []
    for name in classnames:
        texts = (knowledge or {}).get(name, [])
        augmented = [" " + " ".join(word_tokenize(f" ; {name} , " + t if t is not None else "")) for t in texts]
        out.append([t.format(name) for t in templates] if not augmented
                   else [t.format(name) + k for k in augmented for t in templates])
    return out


# ---------------------------------------------------------------------------------------------- tokenizer
_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)", re.U), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
]
_ENDING_QUOTES = [
    (re.compile("([»”’])", re.U), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$", re.U), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}", re.U), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]", re.U), r" \g<0> "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS = [re.compile(p) for p in (
    r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b", r"(?i)\b(gon)(?#X)(na)\b",
    r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b", r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)",
    r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b")]
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")


def nltk_word_tokenizer(text: str) -> list[str]:
    """NLTK 3.7's ``NLTKWordTokenizer().tokenize`` (one sentence), rule for rule."""
    for regexp, substitution in _STARTING_QUOTES + _PUNCTUATION + [_PARENS_BRACKETS, _DOUBLE_DASHES]:
        text = regexp.sub(substitution, text)
    text = " " + text + " "
    for regexp, substitution in _ENDING_QUOTES:
        text = regexp.sub(substitution, text)
    for regexp in _CONTRACTIONS:
        text = regexp.sub(r" \1 \2 ", text)
    return text.split()


def word_tokenize(text: str) -> list[str]:
    """NLTK's ``word_tokenize`` when installed with its Punkt data, else the approximation above."""
    try:
        from nltk.tokenize import word_tokenize as nltk_tokenize  # optional; not a raykd dependency

        return nltk_tokenize(text)
    except (ImportError, LookupError):
        return [token for sentence in _SENTENCE_END.split(text) for token in nltk_word_tokenizer(sentence)]
