"""Small types shared by layers that must not know each other: the models describe their image input
with an `ImageSpec`, and the data pipeline preprocesses to it. This module imports nothing of raykd."""
from __future__ import annotations

from dataclasses import dataclass

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageSpec:
    """What an image tower expects: square `size` input, per-channel `mean`/`std` on a 0..1 scale."""

    size: int
    mean: tuple = CLIP_MEAN
    std: tuple = CLIP_STD
