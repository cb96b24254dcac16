"""Batch-wise image preprocessing: decode with PIL, then crop + resize + normalise a whole batch in torch.

Every augmentation is a crop box per image followed by one batched `torchvision.ops.roi_align` (bilinear,
adaptive sampling, so down-scaling averages like an anti-aliased resize) to `size x size`:
    none / eval   the centred square of side min(H, W): "resize the shorter side, centre crop"
    light         RandomResizedCrop, scale (0.8, 1.0), ratio (0.9, 1.11)
    clip          RandomResizedCrop, scale (0.9, 1.0), ratio (3/4, 4/3): open_clip's default train transform
There is no horizontal flip: captions name positions ("in the top left corner").
Output is uint8 [B, 3, size, size]: a quarter of float32's bytes through Ray's object store, the shuffle
buffer and the copy to the GPU. `normalise` turns it into the tower's float input (mean/std of its
`ImageSpec`) where it is used, on the device the batch is on.
"""
from __future__ import annotations

import functools
import io
import warnings
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.ops import roi_align

from raykd.specs import ImageSpec

AUGMENTS = {  # name -> (scale range, aspect-ratio range) of RandomResizedCrop; None: centre crop
    "none": None,
    "light": ((0.8, 1.0), (0.9, 1 / 0.9)),
    "clip": ((0.9, 1.0), (3 / 4, 4 / 3)),
}


def decode_image(data: bytes, size: int | None = None) -> np.ndarray:
    """Encoded image bytes -> uint8 [H, W, 3] RGB, as the image is meant to be seen: EXIF orientation applied,
    16-bit greyscale scaled to 8 bits (not clipped), transparency composited on white, CMYK and palettes
    converted. With `size`, JPEGs decode at a reduced scale whose sides stay >= size (PIL `draft`), which is
    much faster for large images. Raises PIL's errors; a decompression bomb (over PIL's pixel limit, whose
    warning is raised as an error here) raises `Image.DecompressionBombError`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        if size is not None and img.format == "JPEG":
            img.draft("RGB", (size, size))
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit greyscale: rescale, convert("RGB") would clip
        pixels = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        return np.repeat((pixels * (255.0 / top)).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))


def centre_boxes(heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """float [B, 4] (x0, y0, x1, y1): the centred square of side min(H, W) of each image."""
    side = np.minimum(heights, widths).astype(np.float64)
    x0, y0 = (widths - side) / 2, (heights - side) / 2
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def random_resized_boxes(
    heights: np.ndarray, widths: np.ndarray, scale, ratio, rng: np.random.Generator, tries: int = 10
) -> np.ndarray:
    """float [B, 4] crop boxes with torchvision's RandomResizedCrop.get_params rule, vectorised:
    `tries` draws of (area fraction, log aspect ratio) per image, the first that fits wins, else a
    centre crop clamped to `ratio`."""
    h_img, w_img = heights[:, None].astype(np.float64), widths[:, None].astype(np.float64)
    area = h_img * w_img * rng.uniform(scale[0], scale[1], (len(heights), tries))
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), area.shape))
    w, h = np.round(np.sqrt(area * aspect)), np.round(np.sqrt(area / aspect))
    ok = (w > 0) & (h > 0) & (w <= w_img) & (h <= h_img)
    first = ok.argmax(axis=1)
    rows = np.arange(len(heights))
    w, h = w[rows, first], h[rows, first]
    y0 = np.floor(rng.random(len(rows)) * (heights - h + 1))
    x0 = np.floor(rng.random(len(rows)) * (widths - w + 1))
    boxes = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    fallback = ~ok.any(axis=1)
    if fallback.any():
        boxes[fallback] = _clamped_centre_boxes(heights[fallback], widths[fallback], ratio)
    return boxes


def _clamped_centre_boxes(heights: np.ndarray, widths: np.ndarray, ratio) -> np.ndarray:
    h, w = heights.astype(np.float64), widths.astype(np.float64)
    in_ratio = w / h
    w_out = np.where(in_ratio > ratio[1], np.round(h * ratio[1]), w)
    h_out = np.where(in_ratio < ratio[0], np.round(w / ratio[0]), h)
    x0, y0 = np.round((w - w_out) / 2), np.round((h - h_out) / 2)
    return np.stack([x0, y0, x0 + w_out, y0 + h_out], axis=1)


def crop_resize(images: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [B, H, W, 3] + float [B, 4] boxes (x0, y0, x1, y1 in pixel-edge coordinates)
    -> uint8 [B, 3, size, size], each box resized to size x size (rounded to the nearest level)."""
    images = np.ascontiguousarray(images) if images.flags.writeable else images.copy()  # torch wants writable
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    rois = torch.cat([torch.arange(len(x), dtype=torch.float32)[:, None], torch.from_numpy(boxes).float()], 1)
    out = roi_align(x, rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=16)
def _scale_shift(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    return (1 / (255 * std_t)).to(device), (mean_t / std_t).to(device)  # made once per device, not per batch


def normalise(images: torch.Tensor, spec: ImageSpec) -> torch.Tensor:
    """uint8 [B, 3, S, S] (from `BatchTransform`) -> float32 [B, 3, S, S] normalised by `spec`'s mean/std,
    on the images' device (on a GPU: after the uint8 copy, so only a quarter of the bytes crossed)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalise takes the uint8 images of BatchTransform, got {images.dtype}")
    scale, shift = _scale_shift(tuple(spec.mean), tuple(spec.std), images.device)
    return images.float().mul_(scale).sub_(shift)


class BatchTransform:
    """Picklable batch preprocessor: `transform(images) -> uint8 [B, 3, size, size]` (see `normalise`).

    `images` is uint8 [B, H, W, 3] or a list of uint8 [H_i, W_i, 3] of mixed sizes (processed per
    size group). Random crops come from a numpy generator seeded with `seed` (None: fresh entropy).
    """

    def __init__(self, spec: ImageSpec, augment: str = "none", seed: int | None = None):
        if augment not in AUGMENTS:
            raise ValueError(f"unknown augment {augment!r}; valid: {', '.join(AUGMENTS)}")
        self.spec, self.augment = spec, augment
        self.rng = np.random.default_rng(seed)

    def boxes(self, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
        params = AUGMENTS[self.augment]
        if params is None:
            return centre_boxes(heights, widths)
        return random_resized_boxes(heights, widths, *params, rng=self.rng)

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        if isinstance(images, np.ndarray) and images.ndim == 4:
            n, h, w = images.shape[:3]
            return crop_resize(images, self.boxes(np.full(n, h), np.full(n, w)), self.spec.size)
        groups: dict[tuple, list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape, []).append(i)
        if len(groups) == 1:
            return self(np.stack(images))
        out = torch.empty(len(images), 3, self.spec.size, self.spec.size, dtype=torch.uint8)
        for idx in groups.values():
            out[idx] = self(np.stack([images[i] for i in idx]))
        return out


def eval_transform(spec: ImageSpec) -> BatchTransform:
    """Shorter side resized to `spec.size`, centre crop (batch-wise; `normalise` follows on the device)."""
    return BatchTransform(spec, "none")


def train_transform(spec: ImageSpec, augment: str = "light", seed: int | None = None) -> BatchTransform:
    """The `augment` policy ('none' | 'light' | 'clip') as a batch transform."""
    return BatchTransform(spec, augment, seed)


class PILEvalTransform:
    """Per-image eval path for evaluation code: PIL image -> float32 [3, size, size]."""

    def __init__(self, spec: ImageSpec):
        self.batch = eval_transform(spec)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return normalise(self.batch(np.asarray(img.convert("RGB"))[None]), self.batch.spec)[0]
