"""The one training loop: setup -> step -> report -> checkpoint, used by every entry point.

`run_training(cfg, ctx)` knows nothing of Ray: a `LoopContext` supplies the rank, the device,
each epoch's batches, the latest checkpoint and a `report` function. Ray Train's workers get theirs
from `raykd.train.ray_context.ray_context` (its `train_loop_per_worker` is the Ray entry point);
tests and benchmarks give it plain iterables (`tests/train/local.py`). What is optimised, the model
and the losses as one module, is `raykd.train.objective`.
"""
from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

from raykd.config.loading import config_to_dict
from raykd.config.schema import Config
from raykd.data.transforms import normalise
from raykd.distributed import all_reduce_sum, average_batchnorm_stats, mark_averaged_by_ddp
from raykd.models.dual_encoder import DualEncoder, build_dual_encoder
from raykd.train import checkpoint as ckpt
from raykd.train import faults
from raykd.train.ema import ModelEMA, evaluation_model, snapshot
from raykd.train.feature_cache import load_feature_caches
from raykd.train.objective import Objective, build_loss, freeze_unused
from raykd.train.optim import build_optimizer, build_scheduler

NON_TOKEN_KEYS = ("image", "label")


@dataclass
class LoopContext:
    """What the loop needs from whoever runs it."""

    epoch_batches: Callable[[int], Iterable[dict]]  # epoch -> batches of tensors
    steps_per_epoch: int
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    load_checkpoint: Callable[[], Optional[dict]] = lambda: None  # the latest checkpoint's state
    # report(metrics, checkpoint_dir or None); every rank calls it at the same points
    report: Callable[[dict, Optional[str]], None] = lambda metrics, checkpoint_dir: None
    wrap_model: Callable[[nn.Module], nn.Module] = lambda module: module
    evaluate: Optional[Callable[[DualEncoder, int], dict]] = None  # rank 0 only, end of epoch (-1: before training)
    extra_metrics: Callable[[], dict] = dict  # e.g. skipped-sample counts from the data pipeline


@dataclass
class Components:
    model: DualEncoder
    loss: nn.Module
    objective: nn.Module  # possibly DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Optional[torch.amp.GradScaler]
    autocast: Callable[[], contextlib.AbstractContextManager]
    ema: Optional[ModelEMA] = None  # optim.ema_decay > 0: the averaged weights evaluation sees
    initial_state: Optional[dict] = None  # optim.wise_ft_alpha < 1: the weights before training (CPU)
    nonfinite: Optional["NonFiniteLoss"] = None  # the first non-finite loss, checked at each report


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def amp_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """Under 'auto': bf16 AMP on CUDA devices of compute capability 8.0+ (Ampere, Hopper), fp16 (with the
    grad scaler) on older ones such as T4 and V100, which have no bf16 tensor cores; fp32 on CPU.
    Explicit bf16/fp16/fp32 where asked."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def enable_fast_cuda_math(device: torch.device) -> None:
    """TF32 matmuls and convolutions (fp32 layers run on tensor cores: Ampere and newer) and cuDNN's autotuner
    (the input shapes are fixed per run). Nothing on CPUs."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def setup(cfg: Config, ctx: LoopContext) -> Components:
    seed_everything(cfg.run.seed)  # same initial weights on every rank
    enable_fast_cuda_math(ctx.device)
    model = build_dual_encoder(cfg.model).to(ctx.device)
    loss = build_loss(cfg).to(ctx.device)
    freeze_unused(model, loss, cfg.loss.teacher, trains_text=cfg.loss.w_simcse > 0)
    if cfg.loss.w_align <= 0 and cfg.loss.w_simcse <= 0:
        raise ValueError("loss.w_align and loss.w_simcse are both 0: nothing to train")
    dtype = amp_dtype(cfg.train.precision, ctx.device)
    objective = ctx.wrap_model(Objective(model, loss, cfg.loss.teacher, cfg.loss.w_align, cfg.loss.w_simcse,
                                         cfg.loss.simcse_temperature, load_feature_caches(cfg, model, ctx.device, dtype)))
    if isinstance(objective, nn.parallel.DistributedDataParallel):
        mark_averaged_by_ddp(loss)  # DDP averages the losses' own parameter gradients: no second all-reduce
    optimizer = build_optimizer(cfg.optim, {"model": model, "loss": loss})
    total_steps = cfg.train.epochs * ctx.steps_per_epoch
    scheduler = build_scheduler(cfg.optim, optimizer, total_steps)
    scaler = torch.amp.GradScaler(ctx.device.type) if dtype == torch.float16 else None
    autocast = (lambda: torch.autocast(ctx.device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    ema = ModelEMA(model, cfg.optim.ema_decay, cfg.optim.ema_on_cpu) if cfg.optim.ema_decay > 0 else None
    initial = snapshot(model) if cfg.optim.wise_ft_alpha < 1 else None
    return Components(model, loss, objective, optimizer, scheduler, scaler, autocast, ema, initial,
                      NonFiniteLoss(ctx.device))


class NonFiniteLoss:
    """The first non-finite loss of a run, recorded on the device every step (a check on the host would sync
    the device each step) and raised at the next report, before it can save a checkpoint."""

    def __init__(self, device: torch.device):
        self.step = torch.zeros((), dtype=torch.long, device=device)  # 0: none seen
        self.epoch = torch.zeros((), dtype=torch.long, device=device)
        self.value = torch.zeros((), device=device)

    def record(self, loss: torch.Tensor, step: int, epoch: int) -> None:
        first = (self.step == 0) & ~torch.isfinite(loss)
        self.step = torch.where(first, step, self.step)
        self.epoch = torch.where(first, epoch, self.epoch)
        self.value = torch.where(first, loss.detach().float(), self.value)

    def raise_if_seen(self) -> None:
        step = int(self.step)
        if step:
            raise FloatingPointError(f"non-finite loss {self.value.item()} at step {step} (epoch {int(self.epoch)}); "
                                     "no checkpoint written for it")


def device_batch(batch: dict, device: torch.device, image_spec) -> dict:
    """The batch on `device` (Ray Train's batches already arrive there, from pinned memory) with its uint8
    images normalised there by the image tower's spec: a quarter of float32's bytes crossed to the device."""
    batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    batch["image"] = normalise(batch["image"], image_spec)
    return batch


def train_step(c: Components, batch: dict, grad_clip_norm: float):
    """One optimiser step; returns (detached loss, detached teacher features or None). A non-finite loss is
    not checked here (see `NonFiniteLoss`)."""
    tokens = {k: v for k, v in batch.items() if k not in NON_TOKEN_KEYS}
    with c.autocast():
        loss, teacher_feats = c.objective(batch["image"], tokens, batch.get("label"))
    c.optimizer.zero_grad(set_to_none=True)
    if c.scaler is not None:
        c.scaler.scale(loss).backward()
        c.scaler.unscale_(c.optimizer)
    else:
        loss.backward()
    if grad_clip_norm > 0:
        params = [p for g in c.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip_norm)
    if c.scaler is not None:
        c.scaler.step(c.optimizer)
        c.scaler.update()
    else:
        c.optimizer.step()
    c.model.clamp_logit_scale_()
    if c.ema is not None:
        c.ema.update(c.model)
    c.scheduler.step()
    return loss.detach(), teacher_feats


class Meter:
    """Throughput and data-wait bookkeeping between two reports."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.start, self.data_time, self.steps, self.samples, self.loss_sum = time.perf_counter(), 0.0, 0, 0, 0.0

    def summary(self, world_size: int) -> dict:
        if not self.steps:  # nothing trained since the last report (e.g. an epoch end right after a log step)
            return {}
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return {"train/loss": float(self.loss_sum) / self.steps,
                "train/samples_per_s": self.samples * world_size / elapsed,
                "train/data_wait_frac": self.data_time / elapsed}


def _report(cfg: Config, ctx: LoopContext, c: Components, meter: Meter, step: int, epoch: int,
            batches_done: int, extra: dict, save: bool) -> None:
    c.nonfinite.raise_if_seen()  # one host sync per report; never a checkpoint of diverged weights
    for cache in getattr(c.objective, "module", c.objective).feature_caches.values():
        cache.raise_if_missed()  # nor of weights trained on a feature that was not its input's
    metrics = {**meter.summary(ctx.world_size), "train/lr": c.optimizer.param_groups[0]["lr"],
               "train/logit_scale": c.model.scale().item(), "train/workers": ctx.world_size,  # elastic runs vary
               "step": step, "epoch": epoch, **extra,
               **ctx.extra_metrics()}
    checkpoint_dir = None
    if save and ctx.rank == 0:
        checkpoint_dir = tempfile.mkdtemp(prefix="raykd-ckpt-")
        ckpt.save_state(checkpoint_dir, model=c.model, loss=c.loss, optimizer=c.optimizer,
                        scheduler=c.scheduler, scaler=c.scaler, step=step, epoch=epoch,
                        batches_done=batches_done, config=config_to_dict(cfg), ema=c.ema, world_size=ctx.world_size)
    ctx.report(metrics, checkpoint_dir)
    if checkpoint_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    meter.reset()


def _average_batchnorm_stats(c: Components) -> None:
    """BatchNorm statistics of the model (and its EMA) averaged over workers: a collective, so every rank calls it."""
    average_batchnorm_stats(c.model)
    if c.ema is not None:
        average_batchnorm_stats(c.ema.module)


def _resume(cfg: Config, c: Components, ctx: LoopContext) -> tuple[int, int, int]:
    """(step, epoch, batches each worker skips in that epoch) from the latest checkpoint, or zeros (from
    `train.init_from`'s weights)."""
    state = ctx.load_checkpoint()
    if state is None:
        if cfg.train.init_from:
            _init_from(cfg, c)
        return 0, 0, 0
    ckpt.restore(state, model=c.model, loss=c.loss, optimizer=c.optimizer, scheduler=c.scheduler, scaler=c.scaler,
                 ema=c.ema)
    # checkpoints from before world_size was stored: assume the same workers (their resume was never exact)
    saved_world = state.get("world_size", ctx.world_size)
    saved_train = state.get("config", {}).get("train", {})
    saved_global = saved_train.get("batch_size", cfg.train.batch_size) * saved_train.get("num_workers", saved_world)
    skip = batches_to_skip(state["batches_done"], saved_global, cfg.train.global_batch)
    if saved_world != ctx.world_size and state["batches_done"] and ctx.rank == 0:
        print(f"[raykd] warning: resuming epoch {state['epoch']} mid-way with {ctx.world_size} workers instead of "
              f"the checkpoint's {saved_world}: the epoch's samples are split differently, so each worker skips "
              f"{skip} batches (the {state['batches_done'] * saved_global} samples trained, rounded down to whole "
              "global batches); some samples of this epoch may be trained twice and others not at all", flush=True)
    return state["step"], state["epoch"], skip


def batches_to_skip(batches_done: int, saved_global_batch: int, global_batch: int) -> int:
    """Batches each worker skips to resume an epoch in which `batches_done` global batches of `saved_global_batch`
    samples were trained, now that a global batch holds `global_batch` samples.

    A worker's batches in an epoch are a function of (seed, epoch, rank, world size) (Ray Data's ordered
    execution, `raykd.train.trainer.ordered_ingest`), so with the same world size skipping `batches_done`
    resumes exactly where the run stopped. An elastic run keeps the global batch whatever its worker count, so
    it skips `batches_done` too, though the epoch is split differently. A run restarted with another
    `train.num_workers` (the per-worker batch kept) skips as many global samples as were trained, rounded down
    to whole batches (train a few twice rather than miss some)."""
    return batches_done * saved_global_batch // global_batch


def _init_from(cfg: Config, c: Components) -> None:
    """`train.init_from`: the checkpoint's weights (raykd.train.checkpoint.init_from); the optimiser, schedule and
    position stay fresh, and the EMA and WiSE-FT's initial weights start from the loaded ones."""
    config = config_to_dict(cfg)
    with_loss = ckpt.init_from(ckpt.read_init_state(cfg.train.init_from, config), config, model=c.model, loss=c.loss)
    if c.ema is not None:
        c.ema.load_state_dict(c.model.state_dict())
    if c.initial_state is not None:
        c.initial_state = snapshot(c.model)
    print(f"[raykd] initialised from {cfg.train.init_from} (model weights{', loss state' if with_loss else ''}; "
          "fresh optimiser, schedule and step count)", flush=True)


def run_training(cfg: Config, ctx: LoopContext) -> dict:
    """Train for `cfg.train.epochs` (or `max_steps`); returns the last reported metrics."""
    c = setup(cfg, ctx)
    step, start_epoch, skip = _resume(cfg, c, ctx)
    t = cfg.train
    last: dict = {}
    meter = Meter()
    if cfg.eval.before_training and step == 0:  # a fresh run's starting point (epoch -1: every task is due)
        _report(cfg, ctx, c, meter, 0, 0, 0, _evaluate(cfg, ctx, c, -1), save=False)
    for epoch in range(start_epoch, t.epochs):
        c.model.train()
        batches_done, tick = 0, time.perf_counter()
        episode_feats = [] if c.loss.updates_prototypes else None
        for batch in ctx.epoch_batches(epoch):
            if batches_done < skip:  # mid-epoch resume: fast-forward past batches already trained on
                batches_done += 1
                tick = time.perf_counter()
                continue
            meter.data_time += time.perf_counter() - tick
            batch = device_batch(batch, ctx.device, c.model.image_spec)
            loss, teacher_feats = train_step(c, batch, cfg.optim.grad_clip_norm)
            step, batches_done = step + 1, batches_done + 1
            faults.maybe_exit("step", ctx.rank, step)  # tests only (RAYKD_FAULTS): a worker dies here
            c.nonfinite.record(loss, step, epoch)
            meter.steps += 1
            meter.samples += batch["image"].shape[0]
            meter.loss_sum += loss  # a tensor: no device sync until the report
            if episode_feats is not None and teacher_feats is not None:
                episode_feats.append(teacher_feats.float())
            done = bool(t.max_steps and step >= t.max_steps)
            # the epoch-end report below saves the epoch's last step (and a max_steps stop): not twice
            save = (bool(t.checkpoint_every_n_steps) and step % t.checkpoint_every_n_steps == 0 and not done
                    and batches_done < ctx.steps_per_epoch)
            if step % max(t.log_every_n_steps, 1) == 0 or save:
                if save:
                    _average_batchnorm_stats(c)  # the checkpoint keeps the global batches' statistics
                _report(cfg, ctx, c, meter, step, epoch, batches_done, {}, save)
            if done:
                break
            tick = time.perf_counter()
        if batches_done == 0:
            raise ValueError(f"epoch {epoch} gave no training batch: every sample was skipped or the data is smaller "
                             f"than one batch ({ctx.extra_metrics() or 'no skip counts'}); see data.on_error")
        skip = 0
        if episode_feats:
            _update_prototypes(c.loss, episode_feats)
        hit_max = bool(t.max_steps and step >= t.max_steps)
        finished_epoch = not hit_max or batches_done >= ctx.steps_per_epoch
        c.nonfinite.raise_if_seen()  # before evaluating diverged weights
        _average_batchnorm_stats(c)  # what rank 0 evaluates and saves below: the global batches' statistics
        evals = _evaluate(cfg, ctx, c, epoch) if finished_epoch else {}
        next_epoch, position = (epoch + 1, 0) if finished_epoch else (epoch, batches_done)
        _report(cfg, ctx, c, meter, step, next_epoch, position, evals, save=True)
        last = {"step": step, "epoch": next_epoch, **evals}
        if hit_max:
            break
    return last


def _update_prototypes(loss: nn.Module, episode_feats: list) -> None:
    """ProtoCLIP: re-cluster on the teacher features of the epoch just finished; each rank keeps its own rows
    and the k-means all-reduces only centroid sums (no rank gathers the epoch's features)."""
    feats = torch.cat(episode_feats)
    total = int(all_reduce_sum(torch.tensor(float(feats.shape[0]), device=feats.device)))
    if total >= loss.n_prototypes:
        loss.update_prototypes(feats)
    else:  # only a partial epoch (resumed mid-epoch, or cut by max_steps): the trainer checked full ones
        print(f"[raykd] {loss.name}: {total} teacher features < n_prototypes={loss.n_prototypes}; "
              "prototypes not re-clustered this epoch", flush=True)


def _evaluate(cfg: Config, ctx: LoopContext, c: Components, epoch: int) -> dict:
    """Rank 0's evaluation after `epoch` (-1: before training); the evaluator decides which tasks are due
    (raykd.train.evaluation)."""
    if ctx.evaluate is None or ctx.rank != 0:
        return {}
    return ctx.evaluate(evaluation_model(c.model, c.ema, c.initial_state, cfg.optim.wise_ft_alpha), epoch)
