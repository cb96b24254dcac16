"""Reading a raykd checkpoint back into a model: where it is, what it holds, the weights to use.

Evaluation and training both read checkpoints; writing them is training's (`raykd.train.checkpoint`).
One file, `state.pt`, inside the directory Ray Train persists.
"""
from __future__ import annotations

from pathlib import Path

import torch

from raykd.config.loading import build_config
from raykd.models.dual_encoder import build_dual_encoder

STATE_FILE = "state.pt"
WEIGHTS = ("auto", "ema", "trained")


def load_state(directory: str | Path) -> dict:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no raykd checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)

def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from itself, a run directory (its last checkpoint) or a state.pt file."""
    path = Path(path)
    if path.is_file() and path.name == STATE_FILE:
        return path.parent
    if (path / STATE_FILE).is_file():
        return path
    candidates = sorted(path.glob(f"checkpoints/*/checkpoint_*/{STATE_FILE}"), key=lambda p: p.parent.name)
    if not candidates:
        raise FileNotFoundError(f"no raykd checkpoint at {path} (expected {STATE_FILE} or a run directory with checkpoints/)")
    return candidates[-1].parent


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
    state = torch.load(Path(path) / STATE_FILE, map_location="cpu", weights_only=False, mmap=True)
    return int(state.get("step", 0)), int(state.get("epoch", 0)), build_config(state["config"])
