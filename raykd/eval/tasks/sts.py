"""Semantic textual similarity with the text tower as the sentence encoder (SentEval protocol, Conneau &
Kiela, 2018): Spearman correlation x 100 between the cosine similarity of each pair and its gold score,
per subset, and their unweighted mean."""
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


@register_task(TASK, data_kind="sts", modality="text")
def sentence_similarity(model: Any, pairs: Mapping[str, SentencePairs], dataset_name: str, batch_size: int = 256,
                        project: bool = True) -> dict[str, float]:
    """Returns ``sts/<dataset>/spearman`` (mean over subsets) and, when there are several subsets,
    ``sts/<dataset>/spearman_<subset>`` for each."""
    per_subset = {name: spearman100(pair_cosines(model, p.sentences1, p.sentences2, batch_size, project), p.scores)
                  for name, p in pairs.items()}
    metrics = {"spearman": float(np.mean(list(per_subset.values())))}
    if len(per_subset) > 1:
        metrics |= {f"spearman_{name}": value for name, value in per_subset.items()}
    return prefixed(TASK, dataset_name, metrics)
