"""Word similarity (RG65, SimLex-999, WordSim-353): Spearman x 100 between the cosine similarity of each word
pair under the text tower and the human rating. Two protocols:

- ``average`` (default): each word is embedded once, as the mean of its normalised prompt embeddings over
  ``templates`` (:data:`~raykd.eval.templates.WORD_TEMPLATES` unless given), as for zero-shot class weights.
- ``itra``: ITRA's ``word_evaluations`` (ChenDelong1999/ITRA, ``itra/evaluation/nlp_evaluations.py``): every
  pair is expanded over the templates (ITRA's are CLIP's 80 ImageNet templates, ``itra/data/
  classname_and_prompt/ImageNet.py``; :data:`~raykd.eval.templates.IMAGENET_TEMPLATES`) into one
  (prompt, prompt, rating) row per template, and Spearman is taken over all those rows.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from raykd.eval.features import encode_prompts, extract_text_features
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task
from raykd.eval.tasks.sts import spearman100
from raykd.eval.templates import IMAGENET_TEMPLATES, WORD_TEMPLATES

TASK = "word_similarity"
Template = str | Callable[[str], str]
PROTOCOL_TEMPLATES: dict[str, tuple[str, ...]] = {"average": WORD_TEMPLATES, "itra": IMAGENET_TEMPLATES}


def _prompt_embeddings(model: Any, vocab: Sequence[str], templates: Sequence[Template], batch_size: int,
                       project: bool) -> torch.Tensor:
    """Normalised embedding of every (word, template) prompt -> ``[V, T, D]``."""
    prompts = [t(w) if callable(t) else t.format(w) for w in vocab for t in templates]
    return extract_text_features(model, prompts, batch_size, project=project).view(len(vocab), len(templates), -1)


@register_task(TASK, data_kind="word_pairs", modality="text", aliases=("word",))
def word_similarity(model: Any, words1: Sequence[str], words2: Sequence[str], scores: Any, dataset_name: str,
                    protocol: str = "average", templates: Sequence[Template] | None = None, batch_size: int = 256,
                    project: bool = True) -> dict[str, float]:
    """Returns ``word_similarity/<dataset>/spearman`` under ``protocol`` (``average`` or ``itra``, see the
    module docstring); ``templates`` defaults to the protocol's. Raises ValueError for an unknown protocol."""
    if protocol not in PROTOCOL_TEMPLATES:
        raise ValueError(f"word_similarity option protocol: unknown {protocol!r}; "
                         f"choose from {sorted(PROTOCOL_TEMPLATES)}")
    templates = PROTOCOL_TEMPLATES[protocol] if templates is None else templates
    vocab = sorted(set(words1) | set(words2))
    index = {w: i for i, w in enumerate(vocab)}
    left, right = [index[w] for w in words1], [index[w] for w in words2]
    if protocol == "average":
        emb = encode_prompts(model, vocab, templates, batch_size, project=project)
        cosines, ratings = (emb[left] * emb[right]).sum(dim=1).numpy(), np.asarray(scores)
    else:  # one row per (pair, template): the same template on both words, the pair's rating repeated
        emb = _prompt_embeddings(model, vocab, templates, batch_size, project)
        cosines = (emb[left] * emb[right]).sum(dim=-1).flatten().numpy()
        ratings = np.repeat(np.asarray(scores, dtype=np.float64), len(templates))
    return prefixed(TASK, dataset_name, {"spearman": spearman100(cosines, ratings)})
