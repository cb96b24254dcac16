"""A tiny stand-in for the DualEncoder contract (encode_image / encode_text / text_tokenizer / image_spec).

Images: the image backbone feature is the first ``image_dim`` values of the flattened preprocessed image,
so a test controls features exactly by passing a float tensor ``[N, 3, S, S]``. The projection head is a
fixed linear map (identity when ``image_dim == dim``).
Texts: the tokenizer writes character codes; ``encode_text`` decodes them and returns ``text_fn(text)``
(default: a deterministic pseudo-random vector per string).
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FakeSpec:
    size: int = 4
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)


def random_text_vector(text: str, dim: int) -> np.ndarray:
    """A deterministic standard-normal vector for ``text``."""
    return np.random.default_rng(zlib.crc32(text.encode())).standard_normal(dim)


class CharTokenizer:
    """list[str] -> {"input_ids": int64 [n, L]} of character codes, 0-padded (picklable)."""

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        length = max([len(t) for t in texts] + [1])
        ids = np.zeros((len(texts), length), dtype=np.int64)
        for i, text in enumerate(texts):
            ids[i, :len(text)] = [ord(c) for c in text]
        return {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}


def decode(ids: torch.Tensor) -> list[str]:
    return ["".join(chr(c) for c in row if c > 0) for row in ids.tolist()]


class FakeDualEncoder(nn.Module):
    def __init__(self, dim: int = 8, image_dim: int | None = None, text_fn=None, image_size: int = 4, seed: int = 0):
        super().__init__()
        self.dim, self.image_dim = dim, image_dim or dim
        self.image_spec = FakeSpec(size=image_size)
        self.text_tokenizer = CharTokenizer()
        self.text_fn = text_fn or (lambda text: random_text_vector(text, dim))
        self.head = nn.Linear(self.image_dim, dim, bias=False)
        with torch.no_grad():
            if self.image_dim == dim:
                self.head.weight.copy_(torch.eye(dim))
            else:
                self.head.weight.copy_(torch.randn(dim, self.image_dim, generator=torch.Generator().manual_seed(seed)))
        self.image_calls = 0
        self.text_calls = 0
        self.seen_training: list[bool] = []

    def encode_image(self, images: torch.Tensor, *, project: bool = True, normalize: bool = True) -> torch.Tensor:
        assert images.ndim == 4 and images.shape[1] == 3 and images.is_floating_point()
        self.image_calls += 1
        self.seen_training.append(self.training)
        feats = images.flatten(1)[:, :self.image_dim].float()
        if project:
            feats = self.head(feats)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(self, tokens: dict, *, project: bool = True, normalize: bool = True) -> torch.Tensor:
        assert tokens["input_ids"].dtype == torch.int64
        self.text_calls += 1
        feats = torch.as_tensor(np.stack([self.text_fn(t) for t in decode(tokens["input_ids"])]), dtype=torch.float32)
        return F.normalize(feats, dim=-1) if normalize else feats


def as_images(feats: torch.Tensor | np.ndarray, image_size: int = 4) -> torch.Tensor:
    """Rows ``[N, d]`` (d <= 3 * S * S) -> float images ``[N, 3, S, S]`` whose first d values are the rows."""
    feats = torch.as_tensor(feats, dtype=torch.float32)
    out = torch.zeros(feats.shape[0], 3 * image_size * image_size)
    out[:, :feats.shape[1]] = feats
    return out.view(-1, 3, image_size, image_size)


def make_fake_model(**kwargs) -> FakeDualEncoder:
    """A picklable factory (for Ray actors)."""
    return FakeDualEncoder(**kwargs)


def blobs(n: int, num_classes: int, dim: int, separation: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: features ``[n, dim]`` (unit noise around class means of norm ~``separation``) and
    balanced labels ``[n]``."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((num_classes, dim))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    return means[labels] + rng.standard_normal((n, dim)), labels


def fail_task(monkeypatch, task: str, error: Exception) -> None:
    """Make `raykd.eval.engine.run_task` raise `error` for `task` and run every other task as usual."""
    from raykd.eval import engine

    real = engine.run_task

    def flaky(name, *args, **kwargs):
        if name == task:
            raise error
        return real(name, *args, **kwargs)
    monkeypatch.setattr(engine, "run_task", flaky)


@dataclass(frozen=True)
class LoggedItem:
    """An engine work item that appends its process id to ``<log_dir>/<name>`` each time it runs, and kills its
    process (as a lost node would, no cleanup) on its first ``die_times`` runs. Its result: ``(name, pid, run)``."""
    name: str
    unit: str
    log_dir: str
    die_times: int = 0

    def runs(self) -> list[int]:
        log = Path(self.log_dir) / self.name
        return [int(pid) for pid in log.read_text().split()] if log.exists() else []

    def run(self, model, cache):
        with (Path(self.log_dir) / self.name).open("a") as log:
            log.write(f"{os.getpid()}\n")
        if len(self.runs()) <= self.die_times:
            os._exit(1)
        return (self.name, os.getpid(), len(self.runs()))

    def failed(self, error: str):
        return (self.name, None, error)
