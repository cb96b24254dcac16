"""Data loading throughput: the Ray Data pipeline vs webdataset + torch DataLoader, same shards and tensors.

Both paths decode, preprocess (batch crop/resize to uint8) and tokenize the built-in `shapes` train
shards with the same functions (`raykd.data.samples.ShardProcessor`) and the same number of processes
(`--workers` DataLoader workers vs a local Ray with `--workers` CPUs). A first pass warms up each path
(worker start-up, imports, excluded); then timed passes alternate between the paths. Prints samples/s
of each (median) and the ratio; the last line is `ratio data_throughput <ray data / dataloader>`.

    python benchmarks/data_throughput.py [--workers 2] [--batch-size 128] [--image-size 64] [--augment light]
"""
from __future__ import annotations

import argparse
import statistics
import time

import ray

from raykd.data.builtin import ensure_builtin, shard_paths
from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.pipeline import build_train_dataset, iterate_shards_torch, torch_batches
from raykd.specs import ImageSpec


def timed_pass(make_batches) -> tuple[int, float]:
    """(samples, seconds) of one full pass; each batch's image is touched as a trainer would."""
    start, n = time.perf_counter(), 0
    for batch in make_batches():
        n += int(batch["image"].shape[0])
    return n, time.perf_counter() - start


def measure(paths: dict, passes: int) -> dict[str, float]:
    """Warm each path up with one pass, then run `passes` timed passes per path, interleaved (so load
    from other processes hits both alike); print every pass, return each path's median samples/s."""
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(passes + 1):
        for name, make_batches in paths.items():
            n, secs = timed_pass(make_batches)
            label = "warm-up" if i == 0 else f"pass {i}"
            print(f"{name:>10} {label:>7}: {n} samples in {secs:6.2f}s = {n / secs:6.0f}/s", flush=True)
            if i:
                rates[name].append(n / secs)
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers = Ray CPUs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--augment", default="light", choices=["none", "light", "clip"])
    parser.add_argument("--context-length", type=int, default=77)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per path, after one warm-up")
    parser.add_argument("--root", default=None, help="built-in data root (default: $RAYKD_CACHE/builtin)")
    args = parser.parse_args()

    urls = shard_paths(ensure_builtin("shapes", args.root), "train")
    spec, tokenize = ImageSpec(args.image_size), HashTokenizer(length=args.context_length)
    print(f"{len(urls)} shards, batch {args.batch_size}, image {args.image_size}, augment {args.augment}, "
          f"{args.workers} processes per path")

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = build_train_dataset(urls, spec, tokenize, augment=args.augment, batch_size=args.batch_size)
    rates = measure({
        "dataloader": lambda: iterate_shards_torch(urls, spec, tokenize, args.batch_size, args.workers,
                                                   augment=args.augment),
        "ray data": lambda: torch_batches(ds, args.batch_size),
    }, args.passes)
    print(f"dataloader {rates['dataloader']:.0f} samples/s | ray data {rates['ray data']:.0f} samples/s | "
          f"ray/dataloader = {rates['ray data'] / rates['dataloader']:.2f}x (median of {args.passes} passes each)")
    print(f"ratio data_throughput {rates['ray data'] / rates['dataloader']:.3f}")


if __name__ == "__main__":
    main()
