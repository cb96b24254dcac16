"""The `LoopContext` of a Ray Train worker: its dataset shard, device, DDP wrapping and reports."""
from __future__ import annotations

import logging
import warnings

import torch

from raykd.config.schema import Config
from raykd.models.checkpoint import load_state
from raykd.train.loop import LoopContext


def skip_metrics(counts: dict) -> dict:
    """{url: {reason: n}} -> flat `data/skipped` and `data/skipped/<reason>` totals."""
    totals: dict[str, int] = {}
    for reasons in counts.values():
        for reason, n in reasons.items():
            totals[reason] = totals.get(reason, 0) + n
    return {"data/skipped": sum(totals.values()), **{f"data/skipped/{r}": n for r, n in totals.items()}}


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
    import ray.train.torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
        return ray.train.torch.prepare_model(module, parallel_strategy_kwargs=ddp_kwargs)


def ray_context(cfg: Config, loop_config: dict) -> LoopContext:
    import ray.train
    import ray.train.torch

    quiet_report_log(cfg.run.train_log_level)
    torch.set_num_threads(cfg.train.torch_threads or max(1, int(cfg.train.cpus_per_worker)))
    context = ray.train.get_context()
    shard = ray.train.get_dataset_shard("train")
    shuffle = cfg.data.shuffle_buffer > 0

    from raykd.data.skips import set_data_epoch

    def epoch_batches(epoch: int):
        # The datasource plans each epoch's samples (resampled epochs, episodes) from the epoch announced here.
        set_data_epoch(loop_config["skip_counter"], epoch)
        return shard.iter_torch_batches(
            batch_size=cfg.train.batch_size, drop_last=True, prefetch_batches=cfg.data.prefetch_batches,
            local_shuffle_buffer_size=cfg.data.shuffle_buffer if shuffle else None,
            local_shuffle_seed=cfg.run.seed + epoch if shuffle else None)

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
    evaluate = None
    if context.get_world_rank() == 0:
        from raykd.train.evaluation import epoch_evaluator

        evaluate = epoch_evaluator(cfg)

    from raykd.data.skips import skipped_counts

    return LoopContext(
        epoch_batches=epoch_batches, steps_per_epoch=loop_config["steps_per_epoch"],
        rank=context.get_world_rank(), world_size=context.get_world_size(),
        device=ray.train.torch.get_device(), load_checkpoint=load_checkpoint, report=report,
        wrap_model=lambda module: wrap_ddp(module, ddp_kwargs),
        evaluate=evaluate,
        extra_metrics=lambda: skip_metrics(skipped_counts(loop_config["skip_counter"])),
    )
