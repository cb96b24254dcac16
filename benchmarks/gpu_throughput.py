"""GPU training throughput: raykd vs open_clip's own trainer on open_clip ViT-B/32, and raykd's model FLOPs
utilisation (MFU) against the card's peak. One GPU, one run, under 8 minutes.

    python benchmarks/gpu_throughput.py [--batch-size 256] [--steps 100] [--warmup 20]

Both sides train open_clip ViT-B-32 from random weights at 224 px with bf16 autocast (fp16 + grad scaler on
cards without bf16 tensor cores, as `train.precision: auto` picks) and InfoNCE, batch `--batch-size`:
  * raykd: its loop under Ray Train (1 GPU worker) fed by Ray Data with a fixed synthetic uint8 batch, copied
    to the GPU from pinned memory and normalised there (what `benchmarks/step_overhead.py` does on CPU);
  * a bare PyTorch loop on the same GPU and batch (the upper bound for the loop's overhead);
  * `open_clip_train.main --dataset-type synthetic` (its DataLoader workers preprocess a synthetic 224 px image
    per sample), its median "/s/gpu" after the first log line.
Each side's figure is the median samples/s over windows of `--warmup` steps after the first, each window
ending with `torch.cuda.synchronize()`. MFU = samples/s x training FLOPs per sample (3 x the forward's, counted
by `torch.utils.flop_counter`) / the card's dense bf16 peak (table below; an unknown card prints no MFU).
Without CUDA it prints a message and exits cleanly. The last line is `ratio gpu_throughput <raykd / open_clip>`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from raykd.config import load_config
from raykd.models.dual_encoder import build_dual_encoder
from raykd.train.loop import amp_dtype

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_overhead import bare_loop, fixed_batch, open_clip_rate, raykd_loop  # noqa: E402 - the sibling benchmark's

REPO = Path(__file__).resolve().parents[1]
MODEL = "ViT-B-32"
# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s from NVIDIA's data sheets; fp16 for cards without bf16.
# Longer names first: "H100 PCIe" must match before "H100", "A100" before "A10".
PEAK_FLOPS = {
    "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "GH200": 989e12, "B200": 2250e12,
    "A100": 312e12, "A10G": 70e12, "A10": 125e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12, "T4": 65e12,
}


def peak_flops(device_name: str) -> float | None:
    """The card's dense bf16 (fp16) peak from `PEAK_FLOPS` by substring of its name, or None if unknown."""
    for key in sorted(PEAK_FLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_FLOPS[key]
    return None


def vit_config(batch_size: int, use_gpu: bool = True):
    """The quickstart recipe turned into open_clip ViT-B/32 (both towers, open_clip's own projections), 1 worker."""
    overrides = [
        "model.embed_dim=512", f"model.image.name={MODEL}", "model.image.model_config={}",
        f"model.text.name={MODEL}", "model.text.model_config={}",
        "model.image.head.n_layers=0", "model.image.head.identity_if_possible=true",
        "model.text.head.n_layers=0", "model.text.head.identity_if_possible=true",
        "train.num_workers=1", f"train.batch_size={batch_size}", "train.epochs=1", f"train.use_gpu={use_gpu}",
        "train.cpus_per_worker=2", "train.precision=auto", "data.shuffle_buffer=0", "optim.warmup_steps=0",
        "eval.during_training=false",
    ]
    return load_config(REPO / "recipes/quickstart.yaml", overrides)


def training_flops_per_sample(cfg, device: torch.device) -> float:
    """3 x the forward FLOPs of one image-caption pair (backward ~ 2 x forward), counted on a batch of 4."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_dual_encoder(cfg.model).to(device)
    batch = fixed_batch(cfg, 4)
    images = (torch.as_tensor(batch["image"]).float() / 255).to(device)
    tokens = {k: torch.as_tensor(v).to(device) for k, v in batch.items() if k not in ("image", "label")}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images, tokens)
    return 3 * counter.get_total_flops() / 4


def open_clip_train(batch_size: int, steps: int, warmup: int, precision: str) -> float:
    """open_clip_train on its synthetic data set, one GPU: median samples/s of its log lines after the first."""
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-gpu-openclip-"))
    command = [sys.executable, "-m", "open_clip_train.main", "--model", MODEL, "--dataset-type", "synthetic",
               "--train-num-samples", str(batch_size * (steps + warmup)), "--batch-size", str(batch_size),
               "--epochs", "1", "--workers", "8", "--precision", precision, "--lr", "5e-4", "--warmup", "10",
               "--logs", str(work), "--log-every-n-steps", str(warmup), "--save-frequency", "0", "--report-to", ""]
    out = subprocess.run(command, capture_output=True, text=True, cwd=work)
    return open_clip_rate(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device here; this benchmark needs one GPU (nothing measured)")
        print("ratio gpu_throughput nan")
        return 0
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    dtype = amp_dtype("auto", device)
    precision = {torch.bfloat16: "amp_bf16", torch.float16: "amp"}[dtype]
    cfg = vit_config(args.batch_size)
    batch = fixed_batch(cfg, args.batch_size)
    bare = statistics.median(bare_loop(vit_config(args.batch_size), batch, args.steps, args.warmup))
    ours = raykd_loop(cfg, batch, args.steps, args.warmup)
    theirs = open_clip_train(args.batch_size, args.steps, args.warmup, precision)
    flops = training_flops_per_sample(vit_config(args.batch_size), device)
    peak = peak_flops(name)
    print(f"{MODEL}, 224 px, batch {args.batch_size}, {dtype}, {name}")
    print(f"bare PyTorch loop           : {bare:9.1f} samples/s")
    print(f"raykd (Ray Train + Data)    : {ours:9.1f} samples/s   raykd / bare {ours / bare:.3f}")
    print(f"open_clip_train (synthetic) : {theirs:9.1f} samples/s")
    print(f"training FLOPs per sample   : {flops / 1e9:9.2f} GFLOP")
    if peak:
        print(f"raykd MFU                   : {ours * flops / peak:9.3f} of {peak / 1e12:.0f} TFLOP/s "
              f"(bare loop {bare * flops / peak:.3f})")
    else:
        print(f"raykd MFU                   : unknown peak for {name!r} (add it to PEAK_FLOPS)")
    print(f"ratio gpu_throughput {ours / theirs:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
