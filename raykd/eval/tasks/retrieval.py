"""Zero-shot image-text retrieval (MS-COCO, Flickr30k, any caption TSV): recall@k in both directions.

Image -> text is correct at k if ANY of the image's captions is among the k most similar captions;
text -> image is correct at k if the caption's own image is among the k most similar images.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from raykd.eval.features import FeatureCache, extract_image_features, extract_text_features, iter_chunks
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task

TASK = "retrieval"


def _hits_at(ranked_correct: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    """``ranked_correct`` bool ``[n, kmax]`` (rank order) -> {k: fraction of rows with a hit in the first k}."""
    return {k: ranked_correct[:, :k].any(dim=1).float().sum().item() for k in ks}


def retrieval_recalls(image_feats: torch.Tensor, text_feats: torch.Tensor, caption_image: Any,
                      ks: Sequence[int] = (1, 5, 10), chunk_size: int = 1024) -> dict[str, float]:
    """Normalised ``image_feats [N_img, D]``, ``text_feats [N_txt, D]`` and ``caption_image [N_txt]`` ->
    bare ``image_to_text_R@k``, ``text_to_image_R@k`` and ``mean_recall`` (mean of all of them)."""
    caption_image = torch.as_tensor(np.asarray(caption_image), dtype=torch.int64)
    n_img, n_txt = image_feats.shape[0], text_feats.shape[0]
    i2t, t2i = dict.fromkeys(ks, 0.0), dict.fromkeys(ks, 0.0)
    for rows in iter_chunks(n_img, chunk_size):
        top = (image_feats[rows] @ text_feats.T).topk(min(max(ks), n_txt), dim=1).indices
        own = torch.arange(rows.start, rows.stop)[:, None]
        for k, v in _hits_at(caption_image[top] == own, ks).items():
            i2t[k] += v
    for rows in iter_chunks(n_txt, chunk_size):
        top = (text_feats[rows] @ image_feats.T).topk(min(max(ks), n_img), dim=1).indices
        for k, v in _hits_at(top == caption_image[rows, None], ks).items():
            t2i[k] += v
    out = {f"image_to_text_R@{k}": i2t[k] / n_img for k in ks}
    out |= {f"text_to_image_R@{k}": t2i[k] / n_txt for k in ks}
    out["mean_recall"] = float(np.mean(list(out.values())))
    return out


@register_task(TASK, data_kind="captions", modality="image")
def retrieval(model: Any, images: Any, captions: Sequence[str], caption_image: Any, dataset_name: str,
              ks: Sequence[int] = (1, 5, 10), batch_size: int = 256,
              cache: FeatureCache | None = None) -> dict[str, float]:
    """Image <-> text retrieval in the projected, normalised embedding space.

    Returns ``retrieval/<dataset>/{image_to_text_R@k, text_to_image_R@k, mean_recall}`` for k in ``ks``.
    """
    image_feats = extract_image_features(model, images, batch_size, cache=cache, key=(dataset_name, "images"))
    text_feats = extract_text_features(model, captions, batch_size, cache=cache, key=(dataset_name, "captions"))
    return prefixed(TASK, dataset_name, retrieval_recalls(image_feats, text_feats, caption_image, ks))
