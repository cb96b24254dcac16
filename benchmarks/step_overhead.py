"""Step overhead: raykd's training loop under Ray Train (1 worker) vs a bare PyTorch loop.

Both train the same model (the quickstart recipe's tiny CLIP, or any recipe) with the same loss,
optimiser and batch for the same number of steps, in one run of this script. raykd is fed by
Ray Data from an in-memory copy of that batch, so the ratio measures the harness (Ray Train
worker, dataset iteration, reporting, AMP/clipping bookkeeping), not JPEG decoding.

    python benchmarks/step_overhead.py [--recipe recipes/quickstart.yaml] [--steps 200]

Prints samples/s of each and the ratio raykd / bare (1.0 = no overhead).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from raykd.config import load_config
from raykd.losses import get_loss
from raykd.models.dual_encoder import build_dual_encoder
from raykd.train.optim import build_optimizer, build_scheduler

REPO = Path(__file__).resolve().parents[1]


def fixed_batch(cfg, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    model = build_dual_encoder(cfg.model)
    rng = np.random.default_rng(seed)
    size = model.image_spec.size
    captions = [f"a {c} {s}" for c, s in zip(rng.choice(["red", "green", "blue"], batch_size),
                                             rng.choice(["circle", "square", "cross"], batch_size))]
    return {"image": rng.standard_normal((batch_size, 3, size, size)).astype(np.float32),
            **model.text_tokenizer(captions), "label": np.full(batch_size, -1, np.int64)}


def bare_loop(cfg, batch: dict, steps: int, warmup: int) -> float:
    """The textbook loop: forward, loss, backward, clip, AdamW, schedule. Returns samples/s."""
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    torch.manual_seed(cfg.run.seed)
    model = build_dual_encoder(cfg.model)
    loss_fn = get_loss(cfg.loss.name, **cfg.loss.hparams)
    optimizer = build_optimizer(cfg.optim, {"model": model, "loss": loss_fn})
    scheduler = build_scheduler(cfg.optim, optimizer, steps + warmup)
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    tokens = {k: v for k, v in tensors.items() if k not in ("image", "label")}
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        image_feats, text_feats = model(tensors["image"], tokens)
        loss = loss_fn(text_feats, image_feats, logit_scale=model.scale(), labels=tensors["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip_norm)
        optimizer.step()
        scheduler.step()
    return steps * len(batch["image"]) / (time.perf_counter() - start)


def raykd_loop(cfg, batch: dict, steps: int, warmup: int) -> float:
    """raykd's loop under Ray Train with 1 worker; samples/s from its own reports after warm-up."""
    import ray.data

    from raykd.train.run_logger import read_tensorboard_scalars
    from raykd.train.trainer import build_trainer, init_ray

    n = len(batch["image"])
    total = warmup + steps
    init_ray(cfg)
    dataset = ray.data.range(n * total).map_batches(
        lambda ids: {k: v[: len(ids["id"])] for k, v in batch.items()}, batch_size=n).materialize()
    run_dir = Path(tempfile.mkdtemp(prefix="raykd-bench-"))
    cfg.train.log_every_n_steps = warmup
    cfg.eval.during_training = False
    build_trainer(cfg, run_dir, dataset=dataset, n_samples=n * total).fit()
    rates = read_tensorboard_scalars(run_dir / "tensorboard")["train/samples_per_s"]
    return statistics.median(rates[1:])  # the first window includes worker start-up and compilation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes/quickstart.yaml"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    overrides = ["train.num_workers=1", f"train.batch_size={args.batch_size}", "train.epochs=1",
                 "data.shuffle_buffer=0", "optim.warmup_steps=0"]
    cfg = load_config(args.recipe, overrides)
    batch = fixed_batch(cfg, args.batch_size)
    bare = bare_loop(load_config(args.recipe, overrides), batch, args.steps, args.warmup)
    ours = raykd_loop(cfg, batch, args.steps, args.warmup)
    print(f"model: {args.recipe}, batch {args.batch_size}, {args.steps} timed steps, device cpu")
    print(f"bare PyTorch loop        : {bare:8.1f} samples/s")
    print(f"raykd under Ray Train (1): {ours:8.1f} samples/s")
    print(f"ratio raykd / bare       : {ours / bare:8.3f}")


if __name__ == "__main__":
    main()
