"""Word similarity (RG65, SimLex-999, WordSim-353): each word is embedded by the text tower through prompt
templates (the mean of the normalised template embeddings, as for zero-shot class weights); the score is
Spearman x 100 between the cosine similarity of each pair and the human rating."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from raykd.eval.features import encode_prompts
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task
from raykd.eval.tasks.sts import spearman100
from raykd.eval.templates import WORD_TEMPLATES

TASK = "word_similarity"


@register_task(TASK, data_kind="word_pairs", modality="text", aliases=("word",))
def word_similarity(model: Any, words1: Sequence[str], words2: Sequence[str], scores: Any, dataset_name: str,
                    templates: Sequence[str | Callable[[str], str]] = WORD_TEMPLATES, batch_size: int = 256,
                    project: bool = True) -> dict[str, float]:
    """Returns ``word_similarity/<dataset>/spearman``."""
    vocab = sorted(set(words1) | set(words2))
    index = {w: i for i, w in enumerate(vocab)}
    emb = encode_prompts(model, vocab, templates, batch_size, project=project)
    a, b = emb[[index[w] for w in words1]], emb[[index[w] for w in words2]]
    cosines = (a * b).sum(dim=1).numpy()
    return prefixed(TASK, dataset_name, {"spearman": spearman100(cosines, np.asarray(scores))})
