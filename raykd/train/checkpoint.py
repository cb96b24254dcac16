"""Checkpoint contents: model, optimiser, scheduler, grad scaler, loss state and position.

One file, `state.pt`, inside the directory Ray Train persists (reading it back into a model is
`raykd.models.checkpoint`, which evaluation uses too). `step` counts optimiser steps;
`epoch` is the epoch in progress (or the next one, when saved at an epoch boundary) and
`batches_done` how many of its batches each of the run's `world_size` workers had trained on.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from raykd.models.checkpoint import STATE_FILE
from raykd.train import faults


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
