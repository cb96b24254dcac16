"""Raw webdataset samples -> training batches; shared by the Ray Data and the DataLoader paths.

A raw sample is `{"__key__", "__url__", "jpg": bytes, "txt": bytes, "cls": bytes (optional)}`.
`decode_sample` turns one into (image uint8 [H, W, 3], caption, label) or raises `SampleError` with
a reason; `ShardProcessor` runs a whole shard's samples through it under an error policy and emits
column batches `{"image": uint8 [B, 3, S, S], <token keys>: int64 [B, L], "label": int64 [B]}`.
"""
from __future__ import annotations

import zlib
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from raykd.data.transforms import BatchTransform, decode_image
from raykd.specs import ImageSpec

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
TEXT_KEYS = ("txt", "text", "caption")
# Skip reasons, as counted per shard URL.
REASONS = ("missing_shard", "empty_shard", "unreadable_shard", "corrupt_tar", "missing_image", "bad_image",
           "image_too_large", "missing_caption", "empty_caption", "bad_caption", "bad_label")

Tokenize = Callable[[list], dict]  # list[str] -> {name: int64 [n, L]}


class SampleError(ValueError):
    """A sample (or a whole shard, reason 'corrupt_tar') that cannot be used; names shard URL and key."""

    def __init__(self, reason: str, url: str, key: str, cause: BaseException | None = None):
        self.reason, self.url, self.key = reason, url, key
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"{reason} in shard {url!r} at sample {key!r}{detail}")

    def __reduce__(self):  # keep the fields when Ray pickles the error to the driver
        return SampleError, (self.reason, self.url, self.key, None)


def _first(sample: dict, keys: tuple) -> bytes | None:
    return next((sample[k] for k in keys if sample.get(k) is not None), None)


def decode_sample(sample: dict, size_hint: int | None = None) -> tuple[np.ndarray, str, int]:
    """Raw sample -> (image uint8 [H, W, 3], caption str, label int; -1 without `cls`).

    Raises:
        SampleError: reason missing_image | bad_image | image_too_large | missing_caption | empty_caption |
            bad_caption | bad_label.
    """
    url, key = sample.get("__url__", ""), sample.get("__key__", "")

    def fail(reason, cause=None):
        return SampleError(reason, url, key, cause)

    data, text = _first(sample, IMAGE_KEYS), _first(sample, TEXT_KEYS)
    if data is None:
        raise fail("missing_image")
    if text is None:
        raise fail("missing_caption")
    try:
        caption = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    except UnicodeDecodeError as exc:
        raise fail("bad_caption", exc) from exc
    if not caption.strip():
        raise fail("empty_caption")
    try:
        label = int(sample["cls"]) if sample.get("cls") is not None else -1
    except ValueError as exc:
        raise fail("bad_label", exc) from exc
    try:
        image = decode_image(data, size_hint)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # over PIL's pixel limit
        raise fail("image_too_large", exc) from exc
    except Exception as exc:  # PIL raises a zoo of types (OSError, SyntaxError, ValueError, ...)
        raise fail("bad_image", exc) from exc
    return image, caption, label


def collate(
    images: list[np.ndarray], captions: list[str], labels: list[int], transform: BatchTransform, tokenize: Tokenize
) -> dict[str, np.ndarray]:
    """Decoded samples -> {"image": uint8 [B, 3, S, S] (normalised later, on the device: `transforms.normalise`),
    **tokenize(captions) as int64 [B, L], "label": int64 [B]}."""
    batch = {"image": transform(images).numpy()}
    for name, ids in tokenize(captions).items():
        batch[name] = np.asarray(ids, dtype=np.int64)
    batch["label"] = np.asarray(labels, dtype=np.int64)
    return batch


class ShardProcessor:
    """Decode, preprocess and tokenize raw samples in batches of `batch_size`, under an error policy.

    With on_error='skip' a bad sample is dropped and counted in `self.skips[url][reason]`; with
    'raise' a `SampleError` naming the shard URL and sample key propagates. The last batch of a
    stream may be short. Picklable (holds only the spec, the tokenizer and plain settings).
    """

    def __init__(self, spec: ImageSpec, tokenize: Tokenize, augment: str = "none", on_error: str = "skip",
                 batch_size: int = 256, seed: int | None = None):
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.spec, self.tokenize, self.on_error, self.batch_size = spec, tokenize, on_error, batch_size
        self.seed, self.transform = seed, BatchTransform(spec, augment, seed)
        self.skips: dict[str, dict[str, int]] = {}

    def start_shard(self, url: str, unit_seed: int | None = None) -> None:
        """Reseed the crop generator so crops depend on the data, not on which task reads it: with the
        processor's seed, from (seed, url) (the same crops every epoch); else from the work unit's seed
        (a function of the plan's seed, the epoch and the unit's place in it: exact on resume); else fresh."""
        seed = self.seed if self.seed is not None else unit_seed
        if seed is not None:
            self.transform.rng = np.random.default_rng([int(seed), zlib.crc32(url.encode())])

    def skip(self, err: SampleError) -> None:
        """Count `err` (skip policy) or raise it (raise policy)."""
        if self.on_error == "raise":
            raise err
        per_url = self.skips.setdefault(err.url, {})
        per_url[err.reason] = per_url.get(err.reason, 0) + 1

    def decode(self, samples: Iterable[dict]) -> Iterator[tuple[np.ndarray, str, int]]:
        """Decoded (image, caption, label) of the usable samples; bad ones go through `skip`."""
        for sample in samples:
            try:
                yield decode_sample(sample, self.spec.size)
            except SampleError as err:
                self.skip(err)

    def batches(self, samples: Iterable[dict]) -> Iterator[dict[str, np.ndarray]]:
        """Column batches of up to `batch_size` rows (see `collate`) from raw samples."""
        chunk: list = []
        for item in self.decode(samples):
            chunk.append(item)
            if len(chunk) == self.batch_size:
                yield self.collate(chunk)
                chunk = []
        if chunk:
            yield self.collate(chunk)

    def collate(self, chunk: list[tuple[np.ndarray, str, int]]) -> dict[str, np.ndarray]:
        images, captions, labels = zip(*chunk)
        return collate(list(images), list(captions), list(labels), self.transform, self.tokenize)

    def pop_skips(self) -> dict[str, dict[str, int]]:
        """The counts since the last call, then reset."""
        skips, self.skips = self.skips, {}
        return skips
