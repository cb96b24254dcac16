import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from raykd.eval.features import (FeatureCache, encode_prompts, extract_image_features, extract_text_features,
                                 preprocess_uint8)

from .fakes import FakeDualEncoder, FakeSpec, as_images, random_text_vector


def test_preprocess_uint8_resizes_and_normalises():
    spec = FakeSpec(size=6, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    images = torch.full((2, 3, 5, 3), 255, dtype=torch.uint8)  # non-square: shorter side 3 -> 6, centre crop
    out = preprocess_uint8(images, spec)
    assert out.shape == (2, 3, 6, 6)
    expected = torch.tensor([(1 - 0.5) / 0.5, (1 - 0.25) / 0.25, 1.0]).view(1, 3, 1, 1).expand_as(out)
    torch.testing.assert_close(out, expected)


def test_image_features_from_float_uint8_and_paths_agree(tmp_path):
    model = FakeDualEncoder(dim=6, image_size=4)
    arrays = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4, 3), dtype=np.uint8)
    paths = []
    for i, a in enumerate(arrays):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(a).save(paths[-1])
    from_uint8 = extract_image_features(model, arrays, batch_size=2)
    from_paths = extract_image_features(model, [str(p) for p in paths], batch_size=3)
    from_float = extract_image_features(model, preprocess_uint8(torch.from_numpy(arrays), model.image_spec))
    assert from_uint8.shape == (5, 6) and from_uint8.dtype == torch.float32
    torch.testing.assert_close(from_uint8, from_paths)
    torch.testing.assert_close(from_uint8, from_float)
    torch.testing.assert_close(from_uint8.norm(dim=-1), torch.ones(5))


def test_missing_image_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        extract_image_features(FakeDualEncoder(), [str(tmp_path / "nope.png")])


def test_project_and_normalize_flags():
    model = FakeDualEncoder(dim=4, image_dim=6)
    rows = torch.randn(7, 6)
    raw = extract_image_features(model, as_images(rows), project=False, normalize=False)
    torch.testing.assert_close(raw, rows)
    projected = extract_image_features(model, as_images(rows), project=True, normalize=True)
    torch.testing.assert_close(projected, F.normalize(rows @ model.head.weight.detach().T, dim=-1))


def test_eval_mode_no_grad_and_mode_restored():
    model = FakeDualEncoder().train()
    feats = extract_image_features(model, as_images(torch.randn(3, 8)))
    assert model.training and model.seen_training == [False]
    assert not feats.requires_grad


def test_text_features_batched_in_order():
    model = FakeDualEncoder(dim=5)
    texts = [f"sentence {i}" for i in range(7)]
    feats = extract_text_features(model, texts, batch_size=3, normalize=False)
    assert model.text_calls == 3
    expected = torch.tensor(np.stack([random_text_vector(t, 5) for t in texts]), dtype=torch.float32)
    torch.testing.assert_close(feats, expected)


def test_cache_extracts_once_per_key_and_serves_both_normalisations():
    model, cache = FakeDualEncoder(dim=4, image_dim=6), FeatureCache()
    images = as_images(torch.randn(5, 6))
    a = extract_image_features(model, images, 2, project=False, normalize=False, cache=cache, key=("ds", "test"))
    b = extract_image_features(model, images, 2, project=False, normalize=True, cache=cache, key=("ds", "test"))
    assert model.image_calls == 3  # one pass of 3 batches
    torch.testing.assert_close(b, F.normalize(a, dim=-1))
    extract_image_features(model, images, 2, project=True, cache=cache, key=("ds", "test"))
    assert model.image_calls == 6 and len(cache) == 2  # projected features are a different entry
    with pytest.raises(ValueError, match="rows"):
        extract_image_features(model, images[:2], project=False, cache=cache, key=("ds", "test"))


def test_encode_prompts_is_renormalised_template_mean():
    model = FakeDualEncoder(dim=6)
    templates = ["a {}.", "the {}!", lambda c: f"{c}?"]
    out = encode_prompts(model, ["cat", "dog"], templates)
    for row, name in zip(out, ["cat", "dog"]):
        prompts = ["a " + name + ".", "the " + name + "!", name + "?"]
        vecs = torch.tensor(np.stack([random_text_vector(p, 6) for p in prompts]), dtype=torch.float32)
        vecs = F.normalize(vecs, dim=-1)
        torch.testing.assert_close(row, F.normalize(vecs.mean(0), dim=0))


@pytest.mark.parametrize("device, capability, enabled", [("cpu", None, False), ("cuda", (7, 5), False),
                                                          ("cuda", (9, 0), True)])
def test_inference_autocasts_to_bf16_on_gpus_with_bf16_tensor_cores(monkeypatch, device, capability, enabled):
    from raykd.eval import features

    seen = []
    monkeypatch.setattr(features, "model_device", lambda model: torch.device(device))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
    monkeypatch.setattr(torch, "autocast", lambda kind, dtype, enabled: seen.append((kind, dtype, enabled))
                        or contextlib.nullcontext())
    model = torch.nn.Linear(2, 2).train()
    with features.inference(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training and seen == [("cuda", torch.bfloat16, enabled)]
