"""Zero-shot classification (Radford et al., 2021, "Learning Transferable Visual Models From Natural
Language Supervision"): each class is the mean of its prompt-template text embeddings, and an image is
assigned to the class of highest cosine similarity.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from raykd.eval.features import FeatureCache, encode_prompts, extract_image_features
from raykd.eval.metrics import classification_metrics, prefixed
from raykd.eval.tasks._registry import register_task

TASK = "zeroshot"


def zeroshot_classifier(model: Any, classnames: Sequence[str], templates: Sequence[str | Callable[[str], str]],
                        batch_size: int = 256) -> torch.Tensor:
    """Class weights ``[D, C]``: per class, the mean of its L2-normalised template embeddings, renormalised."""
    return encode_prompts(model, classnames, templates, batch_size).T.contiguous()


@register_task(TASK, data_kind="classification", modality="image", aliases=("zero-shot",))
def zeroshot_classification(model: Any, images: Any, labels: Any, classnames: Sequence[str],
                            templates: Sequence[str | Callable[[str], str]], dataset_name: str,
                            batch_size: int = 256, cache: FeatureCache | None = None) -> dict[str, float]:
    """Zero-shot accuracy of ``model`` on ``N`` images with integer ``labels [N]`` in ``range(C)``.

    Returns ``zeroshot/<dataset>/top1``, ``.../top5`` (only when C >= 5) and ``.../mean_per_class_recall``.
    """
    feats = extract_image_features(model, images, batch_size, project=True, normalize=True,
                                   cache=cache, key=(dataset_name, "test"))
    logits = feats @ zeroshot_classifier(model, classnames, templates, batch_size)
    return prefixed(TASK, dataset_name, classification_metrics(logits, labels, len(classnames)))
