"""Checkpoint contents: model, optimiser, scheduler, grad scaler, loss state and position; and starting a new run
from a checkpoint's weights (`train.init_from`, `raykd train --init-from`).

One file, `state.pt`, inside the directory Ray Train persists (reading it back into a model is
`raykd.models.checkpoint`, which evaluation uses too). `step` counts optimiser steps;
`epoch` is the epoch in progress (or the next one, when saved at an epoch boundary) and
`batches_done` how many of its batches each of the run's `world_size` workers had trained on.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from raykd.models.checkpoint import STATE_FILE, find_checkpoint, is_complete, read_state
from raykd.train import faults

# Model options that do not change the parameters' names or shapes: a checkpoint trained with other values of
# these still initialises the model (its weights replace pretrained ones; locking only says what trains).
NOT_ARCHITECTURE = {"pretrained", "weights", "cache_dir", "lock", "lock_patterns", "train_patterns",
                    "grad_checkpointing", "max_seq_length", "image_size", "pooler", "prompt_template",
                    "init_logit_scale", "max_logit_scale", "learn_logit_scale", "compile"}


def save_state(directory: str | Path, *, model, loss, optimizer, scheduler, scaler, step: int, epoch: int,
               batches_done: int, config: dict, ema=None, world_size: int = 1) -> Path:
    path = Path(directory) / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.partial")
    torch.save({
        "model": model.state_dict(),
        "loss": loss.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": step, "epoch": epoch, "batches_done": batches_done, "world_size": world_size,
        "config": config,
        "ema": ema.state_dict() if ema is not None else None,  # the EMA model's weights (optim.ema_decay)
    }, partial)
    faults.maybe_exit("checkpoint", 0, step)  # tests only (RAYKD_FAULTS): the writer dies mid-checkpoint
    os.replace(partial, path)  # atomic: a crash mid-write leaves no state.pt that looks complete
    return path


def restore(state: dict, *, model, loss, optimizer=None, scheduler=None, scaler=None, ema=None) -> None:
    model.load_state_dict(state["model"])
    loss.load_state_dict(state["loss"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if ema is not None:  # a checkpoint without EMA weights restarts the average at the restored model
        ema.load_state_dict(state.get("ema") or state["model"])


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("model_config", "adapter_config"):
            out |= _flatten(value, f"{prefix}{key}.")
        elif key not in NOT_ARCHITECTURE:
            out[f"{prefix}{key}"] = value
    return out


def read_init_state(path: str | Path, config: dict) -> dict:
    """The state of checkpoint `path` (a checkpoint or run directory, or its state.pt) to start a run of `config`
    (the new run's config as a dict) from, read with `weights_only=True`.

    Raises FileNotFoundError for a missing or incomplete checkpoint (`find_checkpoint`), ValueError naming
    `train.init_from` for a state without model weights or whose model section differs from the new run's in an
    option that shapes the parameters (everything but `NOT_ARCHITECTURE`)."""
    directory = find_checkpoint(path)
    if not is_complete(directory):
        raise ValueError(f"train.init_from: {directory / STATE_FILE} is incomplete (cut short while it was written)")
    state = read_state(directory / STATE_FILE, mmap=True)  # tensors are read when loaded into the model
    if not isinstance(state.get("model"), dict) or not isinstance(state.get("config"), dict):
        raise ValueError(f"train.init_from: {directory / STATE_FILE} holds no raykd model weights and config")
    theirs, ours = _flatten(state["config"].get("model", {}), "model."), _flatten(config["model"], "model.")
    differ = [f"{k}: {theirs.get(k)!r} in the checkpoint, {ours.get(k)!r} here"
              for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    if differ:
        raise ValueError(f"train.init_from: the model of {directory} is not this recipe's: {'; '.join(differ[:5])}"
                         + (f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""))
    return state


def init_from(state: dict, config: dict, *, model, loss) -> bool:
    """Load a checkpoint's weights into a new run's `model`; the loss's state (learned prototypes, centres, queues)
    too when the loss is the same (`loss.name` and `loss.hparams`), else the loss starts fresh. The optimiser,
    schedule, EMA and position are not read. Returns whether the loss state was loaded."""
    model.load_state_dict(state["model"])
    previous = state["config"].get("loss", {})
    same_loss = (previous.get("name"), previous.get("hparams")) == (config["loss"]["name"], config["loss"]["hparams"])
    if same_loss and state.get("loss") is not None:
        loss.load_state_dict(state["loss"])
    return same_loss
