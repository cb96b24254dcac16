"""Reading a raykd checkpoint back into a model: where it is, what it holds, the weights to use.

Evaluation and training both read checkpoints; writing them is training's (`raykd.train.checkpoint`).
One file, `state.pt`, inside the directory Ray Train persists.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from raykd.config.loading import build_config
from raykd.models.dual_encoder import build_dual_encoder

STATE_FILE = "state.pt"
WEIGHTS = ("auto", "ema", "trained")


class UnsafeCheckpointError(ValueError):
    """A checkpoint holding pickled objects other than tensors and plain containers (code could run on load)."""


def read_state(path: Path, mmap: bool = False) -> dict:
    """The dict in a raykd `state.pt`, read with `torch.load(weights_only=True)`: tensors, numbers, strings
    and containers only, so a checkpoint from someone else can never execute code when opened. Everything
    raykd stores (state dicts, the config as a dict, counters) is of those types."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{path}: refused to load: it holds pickled objects that are not tensors or plain containers, which "
            f"could run code on load ({str(err).splitlines()[0][:300]}). raykd checkpoints never do; if you trust "
            "the file, convert it once with `torch.save(torch.load(path, weights_only=False), path)`.") from None


def load_state(directory: str | Path) -> dict:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no raykd checkpoint at {path}")
    return read_state(path)


def is_complete(directory: Path) -> bool:
    """Whether `directory/state.pt` was written to the end: torch.save writes a zip whose central directory
    comes last, so a file cut short by a crash (while saving or while Ray copied it to storage) has none."""
    return zipfile.is_zipfile(directory / STATE_FILE)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from itself, a run directory (its latest complete checkpoint: one cut short
    by a crash is passed over) or a state.pt file."""
    path = Path(path)
    if path.is_file() and path.name == STATE_FILE:
        return path.parent
    if (path / STATE_FILE).is_file():
        return path
    candidates = sorted(path.glob(f"checkpoints/*/checkpoint_*/{STATE_FILE}"), key=lambda p: p.parent.name)
    complete = [c.parent for c in candidates if is_complete(c.parent)]
    if not complete:
        found = f"; {len(candidates)} incomplete" if candidates else ""
        raise FileNotFoundError(f"no raykd checkpoint at {path} (expected {STATE_FILE} or a run directory with "
                                f"checkpoints/{found})")
    return complete[-1]


def load_model(path: str | Path, weights: str = "auto"):
    """(DualEncoder with the checkpoint's weights, Config) from a checkpoint or run directory.

    `weights`: "trained" (the optimised weights), "ema" (the EMA average, `optim.ema_decay`; an error
    if the checkpoint has none) or "auto" (the EMA when present, else trained: what evaluation during
    training saw, less WiSE-FT, whose initial weights are not stored). The architecture comes from
    the config stored in the checkpoint; pretrained tags are not fetched again since the stored
    weights replace them.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"--weights: unknown choice {weights!r}; choose from {list(WEIGHTS)}")
    checkpoint = find_checkpoint(path)
    state = load_state(checkpoint)
    if weights == "ema" and not state.get("ema"):
        raise ValueError(f"--weights ema: checkpoint {checkpoint} has no EMA weights (trained without optim.ema_decay)")
    cfg = build_config(state["config"])
    model_cfg = cfg.model
    model_cfg.image.pretrained = model_cfg.text.pretrained = ""
    model_cfg.image.weights = model_cfg.text.weights = ""
    model = build_dual_encoder(model_cfg)
    model.load_state_dict(state["ema"] if weights != "trained" and state.get("ema") else state["model"])
    return model.eval(), cfg


def checkpoint_model(path: str, weights: str = "auto"):
    """The DualEncoder alone (a picklable model factory for Ray actors: `functools.partial`)."""
    return load_model(path, weights)[0]


def checkpoint_info(path: str | Path):
    """(step, epoch, Config) of a checkpoint, read without loading its tensors (memory-mapped)."""
    state = read_state(Path(path) / STATE_FILE, mmap=True)
    return int(state.get("step", 0)), int(state.get("epoch", 0)), build_config(state["config"])
