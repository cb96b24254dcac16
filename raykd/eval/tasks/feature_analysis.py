"""Geometry of the joint embedding space from paired image/text features:

- modality gap (Liang et al., 2022, "Mind the Gap"): ``||mean(x) - mean(y)||`` of the normalised features;
- alignment and uniformity (Wang & Isola, 2020, "Understanding Contrastive Representation Learning through
  Alignment and Uniformity on the Hypersphere"): ``E ||x - y||^2`` over positive pairs and
  ``log E exp(-2 ||u - v||^2)`` over distinct pairs within a modality;
- ``feature_std``: per-dimension standard deviation across samples, averaged over dimensions (collapse check).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from raykd.eval.features import FeatureCache, extract_image_features, extract_text_features
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task

TASK = "feature_analysis"


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """``log mean_{i<j} exp(-t ||x_i - x_j||^2)`` over rows of ``x [N, D]`` (Wang & Isola's reference code)."""
    return torch.pdist(x.double(), p=2).pow(2).mul(-t).exp().mean().log().item()


def feature_statistics(image_feats: torch.Tensor, text_feats: torch.Tensor, max_pairs_sample: int = 4096,
                       seed: int = 0) -> dict[str, float]:
    """Paired rows ``image_feats [N, D]`` / ``text_feats [N, D]`` (normalised here) -> bare ``modality_gap``,
    ``alignment``, ``uniformity_image``, ``uniformity_text``, ``feature_std_image``, ``feature_std_text``.

    Uniformity uses a random subset of at most ``max_pairs_sample`` rows (it is quadratic in N).
    """
    if image_feats.shape != text_feats.shape:
        raise ValueError(f"paired features differ in shape: {tuple(image_feats.shape)} vs {tuple(text_feats.shape)}")
    x, y = F.normalize(image_feats.double(), dim=-1), F.normalize(text_feats.double(), dim=-1)
    sub = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_pairs_sample]
    return {
        "modality_gap": (x.mean(0) - y.mean(0)).norm().item(),
        "alignment": (x - y).pow(2).sum(dim=1).mean().item(),
        "uniformity_image": uniformity(x[sub]),
        "uniformity_text": uniformity(y[sub]),
        "feature_std_image": x.std(dim=0).mean().item(),
        "feature_std_text": y.std(dim=0).mean().item(),
    }


@register_task(TASK, data_kind="captions", modality="image", aliases=("features",))
def feature_analysis(model: Any, images: Any, captions: Sequence[str], caption_image: Any, dataset_name: str,
                     batch_size: int = 256, cache: FeatureCache | None = None) -> dict[str, float]:
    """Statistics of the projected embeddings of each caption paired with its image.

    Returns ``feature_analysis/<dataset>/<statistic>`` for the statistics of :func:`feature_statistics`.
    """
    image_feats = extract_image_features(model, images, batch_size, cache=cache, key=(dataset_name, "images"))
    text_feats = extract_text_features(model, captions, batch_size, cache=cache, key=(dataset_name, "captions"))
    index = torch.as_tensor(np.asarray(caption_image), dtype=torch.int64)
    return prefixed(TASK, dataset_name, feature_statistics(image_feats[index], text_feats))
