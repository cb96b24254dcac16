"""What only a GPU shows of the uint8 image path: batches arrive on the device as uint8 from pinned memory and
are normalised there exactly as on the CPU. Skipped without CUDA."""
from __future__ import annotations

import pytest
import torch

from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.pipeline import build_train_dataset, torch_batches
from raykd.data.transforms import normalise
from raykd.specs import ImageSpec

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
SPEC = ImageSpec(16)


def test_normalise_on_the_gpu_equals_the_cpu():
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    on_gpu = normalise(images.pin_memory().to("cuda", non_blocking=True), SPEC)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), normalise(images, SPEC), atol=1e-6, rtol=0)


@pytest.mark.ray
def test_ray_batches_arrive_on_the_gpu_as_uint8(ray_local, clean_shards):
    ds = build_train_dataset(clean_shards, SPEC, HashTokenizer(length=8), augment="none")
    batch = next(iter(torch_batches(ds, 10, device=torch.device("cuda"))))
    assert batch["image"].device.type == "cuda" and batch["image"].dtype == torch.uint8
    assert batch["input_ids"].device.type == "cuda"
    reference = next(iter(torch_batches(ds, 10)))  # the same first batch (no shuffle), on the CPU
    torch.testing.assert_close(normalise(batch["image"], SPEC).cpu(), normalise(reference["image"], SPEC))
