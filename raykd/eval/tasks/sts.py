"""Semantic textual similarity with the text tower as the sentence encoder (SentEval protocol, Conneau &
Kiela, 2018): Spearman correlation x 100 between the cosine similarity of each pair and its gold score.

A SentEval year (STS12..STS16) has several subsets; its summaries are those of SentEval's ``STSEval.run``
(facebookresearch/SentEval, ``senteval/sts.py``: ``mean`` and ``wmean``, weighted by subset size) and of
SimCSE's fork of it (princeton-nlp/SimCSE, ``SentEval/senteval/sts.py``: ``all``, Spearman over the pairs of
every subset concatenated). ``all`` is the number SimCSE, SBERT and ITRA (ChenDelong1999/ITRA,
``itra/evaluation/nlp_evaluations.py``) report for STS12-16, so it is the headline ``spearman``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from raykd.eval.features import extract_text_features
from raykd.eval.metrics import prefixed
from raykd.eval.readers.sts import SentencePairs
from raykd.eval.tasks._registry import register_task

TASK = "sts"


def pair_cosines(model: Any, sentences1: list[str], sentences2: list[str], batch_size: int = 256,
                 project: bool = True) -> np.ndarray:
    """Cosine similarity ``[n]`` of each sentence pair under ``model.encode_text``."""
    a = extract_text_features(model, sentences1, batch_size, project=project, normalize=True)
    b = extract_text_features(model, sentences2, batch_size, project=project, normalize=True)
    return (a * b).sum(dim=1).numpy()


def spearman100(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation x 100 (scipy)."""
    return 100.0 * float(spearmanr(x, y).statistic)


def subset_summaries(predicted: Mapping[str, np.ndarray], gold: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``spearman_all`` (over all pairs concatenated), ``spearman_mean`` (unweighted mean of the subsets'),
    ``spearman_wmean`` (mean weighted by subset size) and ``spearman_<subset>`` for each subset, all x 100."""
    per_subset = {name: spearman100(predicted[name], gold[name]) for name in predicted}
    sizes = [len(predicted[name]) for name in per_subset]
    return {"spearman_all": spearman100(np.concatenate(list(predicted.values())),
                                        np.concatenate([gold[name] for name in predicted])),
            "spearman_mean": float(np.average(list(per_subset.values()))),
            "spearman_wmean": float(np.average(list(per_subset.values()), weights=sizes)),
            **{f"spearman_{name}": value for name, value in per_subset.items()}}


@register_task(TASK, data_kind="sts", modality="text")
def sentence_similarity(model: Any, pairs: Mapping[str, SentencePairs], dataset_name: str, batch_size: int = 256,
                        project: bool = True) -> dict[str, float]:
    """Returns ``sts/<dataset>/spearman``; for a set with several subsets (a SentEval year) that is
    ``spearman_all``, reported beside ``spearman_mean``, ``spearman_wmean`` and ``spearman_<subset>`` (see
    :func:`subset_summaries`)."""
    predicted = {name: pair_cosines(model, p.sentences1, p.sentences2, batch_size, project)
                 for name, p in pairs.items()}
    gold = {name: p.scores for name, p in pairs.items()}
    if len(pairs) == 1:
        (name,) = pairs
        return prefixed(TASK, dataset_name, {"spearman": spearman100(predicted[name], gold[name])})
    metrics = subset_summaries(predicted, gold)
    return prefixed(TASK, dataset_name, {"spearman": metrics["spearman_all"], **metrics})
