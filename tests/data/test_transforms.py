"""Batch transforms: uint8 crops, normalisation on the device against hand computations and the float path
they replaced, crop boxes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from torchvision.ops import roi_align

from raykd.data.transforms import (
    AUGMENTS, ImageSpec, PILEvalTransform, centre_boxes, eval_transform, normalise, random_resized_boxes,
    train_transform,
)

SPEC = ImageSpec(32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


@pytest.mark.parametrize("augment", list(AUGMENTS))
def test_constant_image_normalises_to_closed_form(augment):
    images = np.empty((4, 48, 40, 3), dtype=np.uint8)
    images[..., 0], images[..., 1], images[..., 2] = 10, 128, 250
    crops = train_transform(SPEC, augment, seed=0)(images)
    assert crops.shape == (4, 3, 32, 32) and crops.dtype == torch.uint8
    out = normalise(crops, SPEC)
    assert out.dtype == torch.float32
    for c, value in enumerate((10, 128, 250)):
        expected = (value / 255 - SPEC.mean[c]) / SPEC.std[c]
        torch.testing.assert_close(out[:, c], torch.full((4, 32, 32), expected), atol=1e-5, rtol=0)


def test_eval_at_native_size_is_pixelwise_normalisation():
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    out = normalise(eval_transform(SPEC)(images), SPEC)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    expected = (x - torch.tensor(SPEC.mean).view(1, 3, 1, 1)) / torch.tensor(SPEC.std).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_eval_resizes_shorter_side_and_centre_crops():
    """A left/centre/right striped 32x96 image keeps only its centre third after eval."""
    images = np.zeros((1, 32, 96, 3), dtype=np.uint8)
    images[:, :, 32:64] = 200
    out = eval_transform(ImageSpec(16, (0, 0, 0), (1, 1, 1)))(images)
    torch.testing.assert_close(out, torch.full((1, 3, 16, 16), 200, dtype=torch.uint8), atol=0, rtol=0)
    np.testing.assert_array_equal(centre_boxes(np.array([32]), np.array([96])), [[32, 0, 64, 32]])


@pytest.mark.parametrize("augment", ["light", "clip"])
def test_random_resized_boxes_respect_scale_and_bounds(augment):
    (lo, hi), (rlo, rhi) = AUGMENTS[augment]
    h, w = np.full(500, 60), np.full(500, 80)
    boxes = random_resized_boxes(h, w, (lo, hi), (rlo, rhi), np.random.default_rng(0))
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 60).all()
    area = bw * bh / (60 * 80)
    assert area.min() >= lo - 0.05 and area.max() <= hi + 0.05
    assert len(np.unique(boxes, axis=0)) > 10  # crops vary


def test_seeded_augment_is_reproducible_and_varies():
    images = np.random.default_rng(1).integers(0, 256, (8, 40, 40, 3), dtype=np.uint8)
    a, b = train_transform(SPEC, "clip", seed=3)(images), train_transform(SPEC, "clip", seed=3)(images)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, eval_transform(SPEC)(images))


def test_mixed_sizes_and_pil_path_match_batch_path():
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(32, 32, 3), (50, 40, 3), (32, 32, 3)]]
    out = eval_transform(SPEC)(images)
    assert out.shape == (3, 3, 32, 32)
    for i, img in enumerate(images):
        torch.testing.assert_close(out[i], eval_transform(SPEC)(img[None])[0])
        torch.testing.assert_close(normalise(out[i:i + 1], SPEC)[0], PILEvalTransform(SPEC)(Image.fromarray(img)))


def test_unknown_augment():
    with pytest.raises(ValueError, match="light"):
        train_transform(SPEC, "heavy")


def _float_path(images: np.ndarray, boxes: np.ndarray, spec: ImageSpec) -> torch.Tensor:
    """The float32 path the uint8 one replaced: roi_align in float, normalised on the host, no rounding."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    rois = torch.cat([torch.arange(len(x), dtype=torch.float32)[:, None], torch.from_numpy(boxes).float()], 1)
    out = roi_align(x, rois, output_size=spec.size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return (out / 255 - mean) / std


@pytest.mark.parametrize("augment", list(AUGMENTS))
def test_uint8_crops_normalised_later_equal_the_float_path_within_one_level(augment):
    """Rounding the crops to uint8 moves each pixel by at most half a level: 1/255 of the 0..1 scale."""
    images = np.random.default_rng(4).integers(0, 256, (6, 57, 45, 3), dtype=np.uint8)
    transform = train_transform(SPEC, augment, seed=5)
    boxes = train_transform(SPEC, augment, seed=5).boxes(np.full(6, 57), np.full(6, 45))
    new = normalise(transform(images), SPEC)
    old = _float_path(images, boxes, SPEC)
    std = torch.tensor(SPEC.std).view(1, 3, 1, 1)
    assert ((new - old).abs() * std).max() <= 1 / 255
    assert not torch.equal(new, old)  # they do differ: the rounding is real


def test_normalise_refuses_float_images():
    with pytest.raises(TypeError, match="uint8"):
        normalise(torch.zeros(1, 3, 4, 4), SPEC)
