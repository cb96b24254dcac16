"""Generators of the built-in data sets (`shapes`, `digits`), as deterministic sample streams.

Every sample is `{"__key__", "jpg": JPEG bytes (quality 95), "txt": caption, "cls": label as ascii}`.
Each sample is drawn from its own generator seeded by (data set seed, split, index), so the bytes
depend only on those and on the pillow/libjpeg build. `raykd.data.builtin` writes them to shards.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

JPEG_QUALITY = 95


@dataclass(frozen=True)
class SyntheticSet:
    """What a built-in data set is: its classes, prompt templates, sizes and sample generator."""

    name: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    image_size: int
    default_train_size: int
    test_size: int
    version: int
    # (split, n) -> samples; `n` only applies to the train split
    samples: Callable[[str, int], Iterator[dict]]


def encode_jpeg(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> JPEG bytes at quality 95."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _sample(key: str, image: np.ndarray, caption: str, label: int) -> dict:
    return {"__key__": key, "jpg": encode_jpeg(image), "txt": caption, "cls": str(label)}


# ---------------------------------------------------------------- shapes

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {"red": (220, 40, 40), "green": (40, 175, 60), "blue": (45, 80, 230), "yellow": (235, 205, 35)}
SHAPE_CLASSES = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # label = colour * 4 + shape
SHAPE_TEMPLATES = (
    "a photo of a {}.", "a {}.", "a picture of a {}.", "an image of a {}.",
    "a small {}.", "a large {}.", "a {} on a dark background.", "a {} on a light background.",
)
_CAPTIONS = (
    "a {name}.",
    "a {name} {pos}.",
    "a {size} {name}.",
    "a {name} on a {bg} background.",
    "a photo of a {size} {name} {pos}.",
    "there is a {name} {pos}.",
    "a {size} {name} on a {bg} background, {pos}.",
    "an image showing a {name}.",
)
_SHAPES_SEED = 20240601
_SPLIT_IDS = {"train": 0, "test": 1}


def _position_phrase(cx: float, cy: float, size: int) -> str:
    row = "top" if cy < size / 3 else ("bottom" if cy > 2 * size / 3 else "")
    col = "left" if cx < size / 3 else ("right" if cx > 2 * size / 3 else "")
    if row and col:
        return f"in the {row} {col} corner"
    if row or col:
        return f"on the {row or col}" if col else f"at the {row}"
    return "in the middle"


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:  # cross: a plus sign of two bars a third of the size wide
        t = (x1 - x0) / 3
        draw.rectangle((x0 + t, y0, x1 - t, y1), fill=fill)
        draw.rectangle((x0, y0 + t, x1, y1 - t), fill=fill)


def render_shape(rng: np.random.Generator, label: int, size: int = 64) -> tuple[np.ndarray, str]:
    """One `shapes` image uint8 [size, size, 3] of class `label`, and its caption."""
    colour, shape = list(COLOURS)[label // len(SHAPES)], SHAPES[label % len(SHAPES)]
    dark = bool(rng.integers(2))
    base = rng.integers(15, 70) if dark else rng.integers(180, 240)
    background = base + rng.normal(0, 12, (size, size, 1)) + rng.normal(0, 5, (size, size, 3))
    img = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    side = int(rng.integers(18, 41))
    x0, y0 = (int(v) for v in rng.integers(1, size - side, 2))
    fill = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLOURS[colour])
    _draw_shape(ImageDraw.Draw(img), shape, (x0, y0, x0 + side, y0 + side), fill)
    words = {
        "name": f"{colour} {shape}",
        "pos": _position_phrase(x0 + side / 2, y0 + side / 2, size),
        "size": "small" if side < 26 else ("large" if side > 33 else "medium-sized"),
        "bg": "dark" if dark else "light",
    }
    return np.asarray(img), _CAPTIONS[int(rng.integers(len(_CAPTIONS)))].format(**words)


def balanced_labels(n: int, num_classes: int, seed) -> np.ndarray:
    """int64 [n]: each class n // num_classes times (+1 for the first n % num_classes), shuffled."""
    return np.random.default_rng(seed).permutation(np.arange(n) % num_classes)


def shapes_samples(split: str, n: int) -> Iterator[dict]:
    """`n` samples of the `shapes` split (`train` or `test`)."""
    split_id = _SPLIT_IDS[split]
    labels = balanced_labels(n, len(SHAPE_CLASSES), [_SHAPES_SEED, split_id])
    for i, label in enumerate(labels):
        image, caption = render_shape(np.random.default_rng([_SHAPES_SEED, split_id, i]), int(label))
        yield _sample(f"{split}-{i:07d}", image, caption, int(label))


SHAPES_SET = SyntheticSet(
    name="shapes", classnames=SHAPE_CLASSES, templates=SHAPE_TEMPLATES, image_size=64,
    default_train_size=8192, test_size=800, version=1, samples=shapes_samples,
)

# ---------------------------------------------------------------- digits

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TEMPLATES = (
    "a photo of the number {}.", "a handwritten {}.", "the digit {}.", "a picture of a handwritten {}.",
)
_DIGIT_CAPTIONS = (
    "a handwritten digit {d}", "the number {w}, written by hand", "a photo of the digit {d}",
    "a handwritten {w}", "an image of the number {w}", "a small grey picture of a handwritten {d}",
)
_DIGITS_SEED = 1797


def _digits_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits, 80/20 stratified split: split -> (images float [n, 8, 8] in 0..16, labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        digits.images, digits.target, test_size=0.2, stratify=digits.target, random_state=_DIGITS_SEED
    )
    return {"train": (xtr, ytr), "test": (xte, yte)}


def digits_samples(split: str, n: int) -> Iterator[dict]:
    """Samples of the `digits` split: 8x8 digits upscaled (bicubic) to 32x32 RGB; train capped at 1437."""
    images, labels = _digits_split()[split]
    if split == "train" and n > len(images):
        raise ValueError(f"digits has {len(images)} training images; train_size={n} is too large")
    count = n if split == "train" else len(images)
    split_id = _SPLIT_IDS[split]
    for i in range(count):
        grey = Image.fromarray((images[i] * (255 / 16)).round().astype(np.uint8))
        rgb = np.asarray(grey.resize((32, 32), Image.BICUBIC).convert("RGB"))
        rng = np.random.default_rng([_DIGITS_SEED, split_id, i])
        label = int(labels[i])
        caption = _DIGIT_CAPTIONS[int(rng.integers(len(_DIGIT_CAPTIONS)))].format(d=label, w=DIGIT_NAMES[label])
        yield _sample(f"{split}-{i:07d}", rgb, caption, label)


DIGITS_SET = SyntheticSet(
    name="digits", classnames=DIGIT_NAMES, templates=DIGIT_TEMPLATES, image_size=32,
    default_train_size=1437, test_size=360, version=1, samples=digits_samples,
)

BUILTIN_SETS: dict[str, SyntheticSet] = {s.name: s for s in (SHAPES_SET, DIGITS_SET)}
