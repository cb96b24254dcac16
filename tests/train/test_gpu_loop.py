"""The training loop and evaluation on a CUDA device: uint8 batches moved and normalised there, bf16 autocast
where the card has bf16 tensor cores. Skipped without CUDA."""
from __future__ import annotations

import pytest
import torch

from raykd.eval.features import extract_image_features, inference
from raykd.train.loop import device_batch, run_training, setup
from tests.train.local import LocalRun
from tests.train.test_loop import tiny_cfg

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


def test_training_runs_on_the_gpu_from_uint8_batches(builtin_root):
    cfg = tiny_cfg(builtin_root, **{"train.epochs": 1, "train.max_steps": 3, "train.log_every_n_steps": 1})
    run = LocalRun(cfg)
    run_training(cfg, run.context(device=CUDA))
    assert [r["step"] for r in run.reports][:3] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["train/loss"])) for r in run.reports if "train/loss" in r)


def test_device_batch_moves_and_normalises_on_the_gpu(builtin_root):
    cfg = tiny_cfg(builtin_root)
    run = LocalRun(cfg)
    c = setup(cfg, run.context(device=CUDA))
    batch = device_batch(next(iter(run.epoch_batches(0))), CUDA, c.model.image_spec)
    assert batch["image"].device.type == "cuda" and batch["image"].dtype == torch.float32
    assert all(v.device.type == "cuda" for v in batch.values())


def test_evaluation_features_under_bf16_autocast_match_fp32_on_the_cpu(builtin_root):
    cfg = tiny_cfg(builtin_root)
    c = setup(cfg, LocalRun(cfg).context())
    images = torch.randint(0, 256, (8, 40, 40, 3), dtype=torch.uint8)
    cpu = extract_image_features(c.model, images)
    gpu_model = c.model.to(CUDA)
    with inference(gpu_model):
        bf16 = torch.cuda.get_device_capability() >= (8, 0)
        assert torch.is_autocast_enabled("cuda") == bf16
    gpu = extract_image_features(gpu_model, images)
    assert gpu.device.type == "cpu" and gpu.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(gpu, cpu).min() > (0.99 if bf16 else 0.9999)
