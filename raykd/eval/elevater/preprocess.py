"""How ELEVATER images become model inputs, per protocol and data set.

- ``toolkit``: the toolkit's ``construct_dataloader`` (Elevater_Toolkit_IC
  ``vision_benchmark/evaluation/feature.py``): torchvision on PIL images, bicubic; with the data set's
  ``DATASET.CENTER_CROP`` (default true) ``Resize(S)`` of the shorter side then ``CenterCrop(S)``, without it
  (kitti-distance) ``Resize((S, S))`` of the whole frame; then ``ToTensor`` and ``Normalize`` with the model's
  mean and std.
- ``clean``: raykd's batched eval transform (:mod:`raykd.data.transforms`: one bilinear, anti-aliased
  ``roi_align`` per batch) of the centred square, or of the whole frame for a set without centre crop.

Both map a list of uint8 ``[H, W, 3]`` arrays to float32 ``[B, 3, S, S]`` and are picklable.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from raykd.data.transforms import crop_resize, eval_transform, normalise

INTERPOLATIONS = ("bicubic", "bilinear")


class ImageTransform:
    """uint8 RGB arrays -> float32 ``[B, 3, S, S]`` for image spec ``spec`` (``size``, ``mean``, ``std``).

    ``interpolation``: ``bicubic`` (the toolkit's torchvision path) or ``bilinear`` (raykd's batched one);
    ``center_crop``: the shorter side resized and the centre cropped, else the whole frame squashed to S x S.
    """

    def __init__(self, spec, center_crop: bool = True, interpolation: str = "bicubic"):
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {interpolation!r}; choose from {INTERPOLATIONS}")
        self.spec, self.center_crop, self.interpolation = spec, center_crop, interpolation
        size = spec.size
        resize = transforms.Resize(size if center_crop else (size, size),
                                   interpolation=transforms.InterpolationMode.BICUBIC)
        self._pil = transforms.Compose([resize, *([transforms.CenterCrop(size)] if center_crop else []),
                                        transforms.ToTensor(),
                                        transforms.Normalize(mean=list(spec.mean), std=list(spec.std))])

    @property
    def tag(self) -> str:
        """Names the transform in feature-cache keys."""
        return f"{self.interpolation}-{'crop' if self.center_crop else 'full'}"

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        images = list(images)
        if not images:
            return torch.empty(0, 3, self.spec.size, self.spec.size)
        if self.interpolation == "bicubic":
            return torch.stack([self._pil(Image.fromarray(np.asarray(img, dtype=np.uint8))) for img in images])
        if self.center_crop:
            return normalise(eval_transform(self.spec)(images), self.spec)
        out = torch.empty(len(images), 3, self.spec.size, self.spec.size, dtype=torch.uint8)
        for i, img in enumerate(images):  # whole frame: the box is the image itself
            h, w = img.shape[:2]
            out[i] = crop_resize(np.asarray(img)[None], np.array([[0.0, 0.0, w, h]]), self.spec.size)[0]
        return normalise(out, self.spec)
