"""DualEncoder: heads, logit scale, locking (no grads, eval mode, no_grad)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from raykd.config.schema import HeadConfig, ModelConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder, count_parameters
from raykd.models.heads import build_head
from tests.conftest import TINY_CLIP


def tiny_model(lock_image=False, lock_text=False, image_builder="openclip", head_layers=0):
    image = (TowerConfig(builder="openclip", model_config=TINY_CLIP, lock=lock_image) if image_builder == "openclip"
             else TowerConfig(builder="torchvision", name="resnet18", image_size=32, lock=lock_image))
    image.head = HeadConfig(n_layers=head_layers, hidden_dim=24)
    text = TowerConfig(builder="openclip", model_config=TINY_CLIP, lock=lock_text)
    return build_dual_encoder(ModelConfig(image=image, text=text, embed_dim=12))


def batch(model, n=4):
    tokens = {k: torch.as_tensor(v) for k, v in model.text_tokenizer(["a red circle"] * n).items()}
    return torch.randn(n, 3, 32, 32), tokens


@pytest.mark.parametrize("n_layers, n_linear", [(0, 1), (1, 2), (3, 4)])
def test_head_depths(n_layers, n_linear):
    head = build_head(HeadConfig(n_layers=n_layers, hidden_dim=24, norm="batchnorm"), 16, 8)
    assert sum(isinstance(m, nn.Linear) for m in head.modules()) == n_linear
    assert head(torch.randn(5, 16)).shape == (5, 8)


def test_identity_head_when_widths_agree():
    assert isinstance(build_head(HeadConfig(identity_if_possible=True), 8, 8), nn.Identity)
    assert isinstance(build_head(HeadConfig(identity_if_possible=True), 8, 4), nn.Linear)


def test_encode_shapes_and_normalisation():
    model = tiny_model(head_layers=2)
    images, tokens = batch(model)
    img = model.encode_image(images)
    assert img.shape == (4, 12) and torch.allclose(img.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert model.encode_image(images, project=False).shape == (4, 16)
    assert model.encode_text(tokens, normalize=False).shape == (4, 12)


def test_logit_scale_init_and_clamp():
    model = tiny_model()
    assert math.isclose(model.scale().item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.0))
    model.clamp_logit_scale_()  # what the training step does after each optimiser step
    assert model.scale().item() == pytest.approx(100.0)


def test_logit_scale_past_the_bound_still_learns_and_is_clamped_after_the_step():
    """open_clip clamps the parameter after the optimiser step: a clamp in the forward pass would zero the
    gradient for good once an update pushed the parameter past ln 100."""
    from raykd.losses import get_loss

    model = tiny_model()
    optimizer = torch.optim.SGD([model.logit_scale], lr=1.0)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0) + 0.5)  # as an optimiser step can leave it
    images, tokens = batch(model)
    image, text = model(images, tokens)
    get_loss("InfoNCE")(text, image, logit_scale=model.scale()).backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0
    optimizer.step()
    model.clamp_logit_scale_()
    assert model.logit_scale.item() <= math.log(100.0) + 1e-6


def test_locked_tower_gets_no_gradients_and_stays_in_eval():
    model = tiny_model(lock_image=True, image_builder="torchvision")
    model.train()
    assert not model.image.training and model.text.training and model.image_head.training
    assert all(not p.requires_grad for p in model.image.parameters())
    images, tokens = batch(model)
    bn = next(m for m in model.image.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    img, txt = model(images, tokens)
    (img.sum() + txt.sum()).backward()
    assert torch.equal(bn.running_mean, before)  # BatchNorm statistics frozen
    assert model.image_head.weight.grad is not None  # the head on a locked backbone still trains
    trainable, total = count_parameters(model.image)
    assert trainable == 0 and total > 0


def test_locked_tower_runs_under_no_grad():
    model = tiny_model(lock_text=True)
    _, tokens = batch(model)
    feats = model.text(tokens)
    assert not feats.requires_grad
