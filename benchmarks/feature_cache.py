"""Feature cache: the MiniLM-teacher distillation recipe with and without its teacher's features cached.

Both runs train the same model (the tiny image tower distilling the frozen MiniLM text tower,
recipes/distill/base-minilm-teacher-shapes.yaml) with the same loss and optimiser, on the same batches in
the same order (the built-in `shapes` data decoded once by Ray Data, un-augmented, materialised), for the
same steps, under Ray Train with 1 worker, in one run of this script. With `model.text.cache_features`
the teacher's features are computed once beforehand (Ray Data batch inference; its time is printed) and
looked up in every step, so the teacher never runs while training.

    python benchmarks/feature_cache.py [--recipe recipes/distill/base-minilm-teacher-shapes.yaml] [--steps 64]

Prints samples/s of each, the cache's build time, the first reported losses (which must agree: the cached
features are the teacher's own), and last `ratio feature_cache <step time cached / uncached>` (goal <= 0.6).
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import ray.data
import torch

from raykd.config import load_config
from raykd.data.run_state import DataRunState
from raykd.train.feature_cache_build import prepare_feature_caches
from raykd.train.run_logger import read_tensorboard_scalars
from raykd.train.trainer import build_dataset, build_trainer, init_ray, train_plan

REPO = Path(__file__).resolve().parents[1]


def fixed_batches(cfg, n: int) -> ray.data.Dataset:
    """The first `n` samples of the recipe's pipeline, materialised: both runs read the same rows in order."""
    plan, _ = train_plan(cfg)
    ds = build_dataset(cfg, plan, DataRunState("bench-feature-cache")).limit(n)
    return ds.materialize()


def run(cfg, dataset, n: int) -> tuple[float, list[float]]:
    """(median samples/s over the report windows after the first, the reported losses)."""
    run_dir = Path(tempfile.mkdtemp(prefix="raykd-bench-fcache-"))
    build_trainer(cfg, run_dir, dataset=dataset, n_samples=n).fit()
    scalars = read_tensorboard_scalars(run_dir / "tensorboard")
    return statistics.median(scalars["train/samples_per_s"][1:]), scalars["train/loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes/distill/base-minilm-teacher-shapes.yaml"))
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--window", type=int, default=8, help="steps per report (one samples/s figure each; divides an epoch)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=1024)
    args = parser.parse_args()
    steps_per_epoch = args.train_size // args.batch_size
    overrides = ["train.num_workers=1", f"train.batch_size={args.batch_size}", f"train.max_steps={args.steps}",
                 f"train.epochs={math.ceil(args.steps / steps_per_epoch)}", f"train.log_every_n_steps={args.window}",
                 f"data.builtin_train_size={args.train_size}", "data.augment=none", "data.shuffle_buffer=0",
                 "train.precision=fp32", "eval.during_training=false", f"train.use_gpu={torch.cuda.is_available()}"]
    plain = load_config(args.recipe, overrides)
    cached = load_config(args.recipe, [*overrides, "model.text.cache_features=true"])
    init_ray(plain)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    n = steps_per_epoch * args.batch_size
    dataset = fixed_batches(plain, n)
    start = time.perf_counter()
    prepare_feature_caches(cached, train_plan(cached)[0], root=tempfile.mkdtemp(prefix="raykd-bench-features-"))
    build_s = time.perf_counter() - start
    # uncached, cached, uncached: each side's figure is the median of its windows (a machine whose load drifts)
    first, plain_losses = run(plain, dataset, n)
    ours, cached_losses = run(cached, dataset, n)
    second, _ = run(load_config(args.recipe, overrides), dataset, n)
    bare = statistics.median([first, second])
    print(f"recipe: {args.recipe}, batch {args.batch_size}, {args.steps} steps, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"cache build (Ray Data, {args.train_size} samples): {build_s:8.1f} s")
    print(f"teacher computed every step : {bare:8.1f} samples/s ({first:.1f}, {second:.1f})")
    print(f"teacher features cached     : {ours:8.1f} samples/s")
    print(f"first reported losses, uncached: {[round(x, 6) for x in plain_losses[:3]]}")
    print(f"first reported losses, cached  : {[round(x, 6) for x in cached_losses[:3]]}")
    for a, b in zip(plain_losses[:2], cached_losses[:2]):
        if not math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5):
            raise SystemExit(f"the cached run's loss {b} differs from the uncached run's {a}: the cache is wrong")
    print(f"ratio feature_cache {bare / ours:.3f}")


if __name__ == "__main__":
    main()
