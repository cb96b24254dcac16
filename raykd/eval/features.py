"""Batched feature extraction for evaluation, and a cache so each (model, data set) is encoded once.

Images may be given as
- ``uint8`` arrays or tensors ``[N, H, W, 3]`` (resized and centre-cropped by
  ``raykd.data.transforms.eval_transform``, the data pipeline's eval path, copied to the device as uint8 and
  normalised there with the model's ``image_spec``),
- a float tensor ``[N, 3, S, S]`` that is already preprocessed (only batched and moved to the device),
- a sequence of file paths, PIL images or uint8 ``[H_i, W_i, 3]`` arrays (loaded lazily, one batch at a time).

Features come back as float32 CPU tensors ``[N, D]``. The device is the model's (from its parameters);
extraction runs under ``torch.no_grad()`` in eval mode, and the model's training mode is restored after.
Normalisation is an L2 normalisation of the raw output, applied here, so a cache holds raw features once
and serves both normalised and unnormalised requests.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from raykd.data.transforms import eval_transform, normalise


# ---------------------------------------------------------------------------------------------- device, mode
def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def inference(model: torch.nn.Module):
    """Eval mode + ``torch.no_grad()``, and on a CUDA device bf16 autocast where the GPU has bf16 tensor cores
    (compute capability 8.0+; features are returned as float32 all the same); the previous training mode is
    restored on exit."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    device = model_device(model)
    fast = device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=fast):
            yield model
    finally:
        if hasattr(model, "train"):
            model.train(was_training)


def _progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)


# ---------------------------------------------------------------------------------------------- images
def preprocess_uint8(images: np.ndarray | torch.Tensor | Sequence[np.ndarray], spec: Any) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` (or a list of ``[H_i, W_i, 3]``) -> float32 ``[B, 3, S, S]`` on the CPU with the
    data pipeline's eval transform (shorter side resized to ``spec.size``, centre crop, normalise)."""
    return normalise(_crops(images, spec), spec)


def _crops(images: np.ndarray | torch.Tensor | Sequence[np.ndarray], spec: Any) -> torch.Tensor:
    """The eval transform's uint8 crops ``[B, 3, S, S]`` (not yet normalised)."""
    if isinstance(images, torch.Tensor):
        images = images.cpu().numpy()
    return eval_transform(spec)(images)


def _load_rgb(item: Any) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return item
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    return np.asarray(item.convert("RGB"))


def _image_batch(images: Any, start: int, stop: int, spec: Any, device: torch.device,
                 transform: Callable[[list[np.ndarray]], torch.Tensor] | None = None) -> torch.Tensor:
    """Rows [start, stop) of ``images`` as the model's float input ``[B, 3, S, S]`` on ``device``: crops
    cross to the device as uint8 (from pinned memory on a GPU) and are normalised there. ``transform``
    (uint8 RGB arrays -> a preprocessed float batch) replaces the model's eval transform, e.g. ELEVATER's."""
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        return images[start:stop].to(device, non_blocking=True)
    if transform is not None:
        return transform([_load_rgb(item) for item in images[start:stop]]).to(device, non_blocking=True)
    if isinstance(images, (np.ndarray, torch.Tensor)):
        crops = _crops(torch.as_tensor(images[start:stop]), spec)
    else:
        crops = _crops([_load_rgb(item) for item in images[start:stop]], spec)
    if device.type == "cuda":
        crops = crops.pin_memory()
    return normalise(crops.to(device, non_blocking=True), spec)


# ---------------------------------------------------------------------------------------------- cache
class FeatureCache:
    """Raw (unnormalised) features of ONE model, keyed by ``(dataset, split, modality, project)``.

    Use one cache per model; tasks that share a data set (zero-shot, linear probe, k-NN, clustering)
    then encode it once. A cached entry whose row count differs from the request raises ``ValueError``
    (two different inputs under one key).
    """

    def __init__(self) -> None:
        self._store: dict[Hashable, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._store

    def keys(self) -> list[Hashable]:
        return list(self._store)

    def clear(self) -> None:
        self._store.clear()

    def get_or_compute(self, key: Hashable, num_rows: int, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached tensor for ``key``, computing and storing it on a miss."""
        if key not in self._store:
            self._store[key] = compute()
        feats = self._store[key]
        if feats.shape[0] != num_rows:
            raise ValueError(f"feature cache entry {key!r} has {feats.shape[0]} rows, request has {num_rows}")
        return feats


def _cached(cache: FeatureCache | None, key: tuple | None, num_rows: int,
            compute: Callable[[], torch.Tensor], normalize: bool) -> torch.Tensor:
    feats = compute() if cache is None or key is None else cache.get_or_compute(key, num_rows, compute)
    return F.normalize(feats, dim=-1) if normalize else feats


# ---------------------------------------------------------------------------------------------- extraction
def extract_image_features(model: Any, images: Any, batch_size: int = 256, project: bool = True,
                           normalize: bool = True, *, cache: FeatureCache | None = None,
                           key: tuple | None = None,
                           transform: Callable[[list[np.ndarray]], torch.Tensor] | None = None) -> torch.Tensor:
    """Encode ``N`` images -> float32 CPU ``[N, D]`` (``D`` = backbone width when ``project=False``).

    ``key`` = ``(dataset, split)`` names the images in ``cache``; both or neither. ``transform`` replaces
    the model's eval transform (uint8 RGB arrays -> ``[B, 3, S, S]``); put what tells it apart in ``key``.
    Raises FileNotFoundError for a missing image path.
    """
    num = len(images)

    def compute() -> torch.Tensor:
        device, spec, out = model_device(model), getattr(model, "image_spec", None), []
        with inference(model), _progress(num, "image features") as bar:
            for start in range(0, num, batch_size):
                batch = _image_batch(images, start, min(start + batch_size, num), spec, device, transform)
                out.append(model.encode_image(batch, project=project, normalize=False).float().cpu())
                bar.update(batch.shape[0])
        return torch.cat(out) if out else torch.empty(0, 0)

    full_key = None if key is None else (*key, "image", project)
    return _cached(cache, full_key, num, compute, normalize)


def extract_text_features(model: Any, texts: Sequence[str], batch_size: int = 256, project: bool = True,
                          normalize: bool = True, *, cache: FeatureCache | None = None,
                          key: tuple | None = None) -> torch.Tensor:
    """Encode ``N`` strings with ``model.text_tokenizer`` + ``model.encode_text`` -> float32 CPU ``[N, D]``."""
    texts, num = list(texts), len(texts)

    def compute() -> torch.Tensor:
        device, out = model_device(model), []
        with inference(model), _progress(num, "text features") as bar:
            for start in range(0, num, batch_size):
                chunk = texts[start:start + batch_size]
                tokens = {k: torch.as_tensor(v).to(device) for k, v in model.text_tokenizer(chunk).items()}
                out.append(model.encode_text(tokens, project=project, normalize=False).float().cpu())
                bar.update(len(chunk))
        return torch.cat(out) if out else torch.empty(0, 0)

    full_key = None if key is None else (*key, "text", project)
    return _cached(cache, full_key, num, compute, normalize)


def encode_prompts(model: Any, names: Sequence[str], templates: Sequence[str | Callable[[str], str]],
                   batch_size: int = 256, project: bool = True) -> torch.Tensor:
    """One embedding per name: mean of its L2-normalised template embeddings, renormalised -> ``[C, D]``.

    A template is a ``str`` with a ``{}`` placeholder or a callable ``name -> prompt``.
    """
    if not templates:
        raise ValueError("encode_prompts needs at least one template")
    prompts = [t(n) if callable(t) else t.format(n) for n in names for t in templates]
    feats = extract_text_features(model, prompts, batch_size, project=project, normalize=True)
    return F.normalize(feats.view(len(names), len(templates), -1).mean(dim=1), dim=-1)


def iter_chunks(num: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(num)`` in steps of ``size``."""
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))
