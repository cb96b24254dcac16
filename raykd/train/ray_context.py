"""Ray Train's side of the loop: `train_loop_per_worker` (the entry point each worker runs) and the
`LoopContext` it gives `raykd.train.loop.run_training`: the dataset shard, device, DDP wrapping, reports."""
from __future__ import annotations

import logging
import warnings

import ray.train
import ray.train.torch
import torch

from raykd.config.loading import build_config
from raykd.config.schema import Config
from raykd.data.pipeline import torch_batches
from raykd.data.run_state import DataRunState
from raykd.models.checkpoint import load_state
from raykd.train.evaluation import epoch_evaluator
from raykd.train.loop import LoopContext, run_training


def quiet_report_log(level: str) -> None:
    """Apply `run.train_log_level` to Ray Train's per-report INFO line in this worker.

    Ray Train logs it through a logger named after its module's file path, which the
    `ray.train.*` filter of `RunConfig(logging_config=...)` does not reach.
    """
    try:
        from ray.train.v2._internal.execution import context as train_context
    except ImportError:  # a Ray that moved it: its line stays
        return
    logging.getLogger(train_context.__file__).setLevel(level)


def wrap_ddp(module: torch.nn.Module, ddp_kwargs: dict) -> torch.nn.Module:
    """Ray Train's DDP wrapping, without torch's deprecation warning for `broadcast_buffers`.

    torch 2.14 prefers `forward_sync_buffers=False`, which older releases do not accept; the two
    differ only in one sync of buffers at init, where every rank's buffers are equal anyway (same
    seed, or the same checkpoint).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
        return ray.train.torch.prepare_model(module, parallel_strategy_kwargs=ddp_kwargs)


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train entry point: `loop_config` = {'config': Config as dict, 'steps_per_epoch': int,
    'data_state': the run's DataRunState}."""
    cfg = build_config(loop_config["config"])
    run_training(cfg, ray_context(cfg, loop_config))


def ray_context(cfg: Config, loop_config: dict) -> LoopContext:
    quiet_report_log(cfg.run.train_log_level)
    torch.set_num_threads(cfg.train.torch_threads or max(1, int(cfg.train.cpus_per_worker)))
    context = ray.train.get_context()
    shard = ray.train.get_dataset_shard("train")
    data_state: DataRunState = loop_config["data_state"]

    def epoch_batches(epoch: int):
        # The datasource plans each epoch's samples (resampled epochs, episodes) from the epoch announced here.
        data_state.set_epoch(epoch)
        return torch_batches(shard, cfg.train.batch_per_worker(context.get_world_size()),
                             shuffle_buffer=cfg.data.shuffle_buffer,
                             prefetch_batches=cfg.data.prefetch_batches,
                             seed=cfg.run.seed + epoch if cfg.data.shuffle_buffer > 0 else None,
                             device=ray.train.torch.get_device())

    def report(metrics: dict, checkpoint_dir):
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)

    def load_checkpoint():
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            return load_state(directory)

    # Loss state (queues, centers) is kept identical by the losses themselves: broadcasting it from
    # rank 0 on every step would copy up to 65536 x D floats. BatchNorm statistics are averaged over
    # workers before each evaluation and checkpoint instead (raykd.distributed.average_batchnorm_stats).
    # With w_align 0 the image tower idles.
    ddp_kwargs = {"broadcast_buffers": False, "find_unused_parameters": cfg.loss.w_align <= 0}
    evaluate = epoch_evaluator(cfg) if context.get_world_rank() == 0 else None
    return LoopContext(
        epoch_batches=epoch_batches, steps_per_epoch=loop_config["steps_per_epoch"],
        rank=context.get_world_rank(), world_size=context.get_world_size(),
        device=ray.train.torch.get_device(), load_checkpoint=load_checkpoint, report=report,
        wrap_model=lambda module: wrap_ddp(module, ddp_kwargs),
        evaluate=evaluate,
        extra_metrics=data_state.skip_metrics,
    )
