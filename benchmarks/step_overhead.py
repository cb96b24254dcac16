"""Step overhead: raykd's training loop under Ray Train (1 worker) vs a bare PyTorch loop.

Both train the same model (the quickstart recipe's tiny CLIP, or any recipe) with the same loss,
optimiser and batch for the same number of steps, in one run of this script. raykd is fed by
Ray Data from an in-memory copy of that batch, so the ratio measures the harness (Ray Train
worker, dataset iteration, reporting, AMP/clipping bookkeeping), not JPEG decoding.

    python benchmarks/step_overhead.py [--recipe recipes/quickstart.yaml] [--steps 200]

Prints samples/s of each and the ratio raykd / bare (1.0 = no overhead). On a machine with CUDA both sides
train on the GPU (raykd's worker with `train.use_gpu`, the bare loop on `cuda`), with the precision
`train.precision: auto` picks, and each timing window ends with `torch.cuda.synchronize()`. raykd is fed the
batch as Ray Data delivers it (uint8 images, normalised on the device); the bare loop normalises it once.

With open_clip's own trainer importable (`open_clip_train`, shipped with open_clip_torch), a second
table compares whole pipelines on the same data: raykd end to end (Ray Data decoding the built-in
`shapes` shards, 1 worker) against `python -m open_clip_train.main` on the same images and
captions, same model config and batch. open_clip_train reads them as a CSV of image files: its
webdataset reader fails on webdataset 1.x (KeyError 'fname').
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from raykd.config import load_config
from raykd.losses import get_loss
from raykd.models.dual_encoder import build_dual_encoder
from raykd.data.transforms import normalise
from raykd.train.loop import amp_dtype
from raykd.train.optim import build_optimizer, build_scheduler

REPO = Path(__file__).resolve().parents[1]


def fixed_batch(cfg, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    model = build_dual_encoder(cfg.model)
    rng = np.random.default_rng(seed)
    size = model.image_spec.size
    captions = [f"a {c} {s}" for c, s in zip(rng.choice(["red", "green", "blue"], batch_size),
                                             rng.choice(["circle", "square", "cross"], batch_size))]
    return {"image": rng.integers(0, 256, (batch_size, 3, size, size), dtype=np.uint8),
            **model.text_tokenizer(captions), "label": np.full(batch_size, -1, np.int64)}


def bare_loop(cfg, batch: dict, steps: int, warmup: int) -> list[float]:
    """The textbook loop: forward, loss, backward, clip, AdamW, schedule.

    Returns samples/s of each window of `warmup` steps after the first (raykd reports the same windows).
    """
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    torch.manual_seed(cfg.run.seed)
    device = torch.device("cuda" if cfg.train.use_gpu else "cpu")
    model = build_dual_encoder(cfg.model).to(device)
    loss_fn = get_loss(cfg.loss.name, **cfg.loss.hparams).to(device)
    optimizer = build_optimizer(cfg.optim, {"model": model, "loss": loss_fn})
    scheduler = build_scheduler(cfg.optim, optimizer, steps + warmup)
    dtype = amp_dtype(cfg.train.precision, device)  # the precision raykd's loop picks: same arithmetic
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    tensors = {k: torch.as_tensor(v).to(device) for k, v in batch.items()}
    tensors["image"] = normalise(tensors["image"], model.image_spec)  # once: the bare loop's input is ready
    tokens = {k: v for k, v in tensors.items() if k not in ("image", "label")}
    model.train()
    rates, start = [], time.perf_counter()
    for i in range(1, warmup + steps + 1):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            image_feats, text_feats = model(tensors["image"], tokens)
            loss = loss_fn(text_feats, image_feats, logit_scale=model.scale(), labels=tensors["label"])
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        if cfg.optim.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip_norm)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if i % warmup == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()  # the window ends when the GPU's work does, not when it was queued
            rates.append(warmup * len(batch["image"]) / (time.perf_counter() - start))
            start = time.perf_counter()
    return rates[1:]


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


def raykd_end_to_end(recipe: str, batch_size: int, train_size: int, use_gpu: bool = False) -> float:
    """raykd on the built-in shapes shards, 1 worker: median samples/s of its reports after the first."""
    from raykd.train.run_logger import read_tensorboard_scalars
    from raykd.train.trainer import build_trainer

    cfg = load_config(recipe, ["train.num_workers=1", f"train.batch_size={batch_size}", "train.epochs=1",
                               f"data.builtin_train_size={train_size}", "eval.during_training=false",
                               "train.log_every_n_steps=4", f"train.use_gpu={use_gpu}"])
    run_dir = Path(tempfile.mkdtemp(prefix="raykd-bench-e2e-"))
    build_trainer(cfg, run_dir).fit()
    rates = read_tensorboard_scalars(run_dir / "tensorboard")["train/samples_per_s"]
    return statistics.median(rates[1:])


def open_clip_end_to_end(recipe: str, batch_size: int, train_size: int, device: str = "cpu",
                         precision: str = "fp32") -> float:
    """open_clip_train on the same images/captions (CSV of files), same model config and batch."""
    from raykd.data.builtin import ensure_builtin, shard_paths
    from raykd.data.shards import iter_tar_samples

    cfg = load_config(recipe)
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-openclip-"))
    (work / "cfg").mkdir()
    (work / "images").mkdir()
    (work / "cfg" / "raykd-bench.json").write_text(json.dumps(cfg.model.image.model_config))
    rows = []
    for path in shard_paths(ensure_builtin("shapes", None, train_size)):
        with open(path, "rb") as f:
            for sample in iter_tar_samples(f, path):
                image = work / "images" / f"{sample['__key__']}.jpg"
                image.write_bytes(sample["jpg"])
                text = sample["txt"]
                rows.append((str(image), text.decode() if isinstance(text, bytes) else text))
    with open(work / "train.csv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["filepath", "title"])
        writer.writerows(rows)
    launcher = ("import open_clip, sys; open_clip.add_model_config(sys.argv.pop(1)); "
                "from open_clip_train.main import main; main(sys.argv[1:])")
    out = subprocess.run(
        [sys.executable, "-c", launcher, str(work / "cfg"), "--model", "raykd-bench", "--train-data",
         str(work / "train.csv"), "--dataset-type", "csv", "--batch-size", str(batch_size), "--epochs", "1",
         "--workers", "1", "--lr", str(cfg.optim.lr), "--warmup", "10", "--precision", precision, "--device", device,
         "--logs", str(work / "logs"), "--log-every-n-steps", "4", "--save-frequency", "0"],
        capture_output=True, text=True)
    return open_clip_rate(out)


def open_clip_rate(out: subprocess.CompletedProcess) -> float:
    """Median samples/s of an open_clip_train run's log lines ("<rate>/s/gpu"), the first left out (warm-up)."""
    rates = [float(x) for x in re.findall(r"([\d.]+)/s/gpu", out.stdout + out.stderr)]
    if len(rates) < 2:
        raise RuntimeError(f"open_clip_train produced no throughput lines:\n{(out.stdout + out.stderr)[-3000:]}")
    return statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes/quickstart.yaml"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=2048, help="samples for the end-to-end comparison")
    parser.add_argument("--skip-open-clip", action="store_true", help="skip the end-to-end comparison")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each comparison (median)")
    args = parser.parse_args()
    overrides = ["train.num_workers=1", f"train.batch_size={args.batch_size}", "train.epochs=1",
                 "data.shuffle_buffer=0", "optim.warmup_steps=0", f"train.use_gpu={torch.cuda.is_available()}"]
    cfg = load_config(args.recipe, overrides)
    batch = fixed_batch(cfg, args.batch_size)
    # Bare and raykd alternate (bare, raykd, bare, ..., bare); each raykd run is compared with the bare runs
    # on either side of it, each side's figure the median over windows of `warmup` steps, so a machine whose
    # load drifts moves both sides of a ratio alike. The headline is the median ratio over the repeats.
    bare_runs = [bare_loop(load_config(args.recipe, overrides), batch, args.steps, args.warmup)]
    ratios = []
    for n in range(args.repeats):
        ours = raykd_loop(cfg, batch, args.steps, args.warmup)
        bare_runs.append(bare_loop(load_config(args.recipe, overrides), batch, args.steps, args.warmup))
        bare = statistics.median(bare_runs[-2] + bare_runs[-1])
        ratios.append(ours / bare)
        print(f"run {n + 1}: bare {bare:8.1f} samples/s, raykd under Ray Train (1 worker) {ours:8.1f} samples/s, "
              f"ratio {ours / bare:.3f}", flush=True)
    print(f"model: {args.recipe}, batch {args.batch_size}, {args.steps} timed steps, "
          f"device {'cuda' if cfg.train.use_gpu else 'cpu'}")
    step_overhead = statistics.median(ratios)
    print(f"ratio raykd / bare       : {step_overhead:8.3f} (median of {len(ratios)}; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f})")
    if not args.skip_open_clip:
        end_to_end(args)
    print(f"ratio step_overhead {step_overhead:.3f}")


def end_to_end(args) -> None:
    try:
        import open_clip_train  # noqa: F401
    except ImportError:
        print("open_clip_train is not importable: end-to-end comparison skipped")
        return
    cuda = torch.cuda.is_available()
    dtype = amp_dtype("auto", torch.device("cuda" if cuda else "cpu"))  # what raykd's precision: auto picks
    precision = {None: "fp32", torch.bfloat16: "amp_bf16", torch.float16: "amp"}[dtype]
    ratios = []
    for n in range(args.repeats):  # alternating, as above
        e2e = raykd_end_to_end(args.recipe, args.batch_size, args.train_size, use_gpu=cuda)
        oc = open_clip_end_to_end(args.recipe, args.batch_size, args.train_size, "cuda" if cuda else "cpu", precision)
        ratios.append(e2e / oc)
        print(f"end to end run {n + 1} on shapes ({args.train_size} samples, data decoding included): "
              f"open_clip_train (1 proc) {oc:8.1f} samples/s, raykd (Ray Train + Data) {e2e:8.1f} samples/s, "
              f"ratio {e2e / oc:.3f}", flush=True)
    print(f"ratio raykd / open_clip  : {statistics.median(ratios):8.3f} (median of {len(ratios)}; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
