"""Locking: whole towers and parameter-name patterns; locked parts stay untouched by training."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from raykd.train.check import check
from raykd.config.schema import Config, ModelConfig, TowerConfig
from raykd.models.dual_encoder import DualEncoder
from raykd.models.locking import select_frozen
from raykd.models.towers import build_tower
from raykd.train.loop import LoopContext, setup, train_step
from tests.conftest import TINY_CLIP
from tests.models.conftest import tokens_of


def resnet(**kw) -> TowerConfig:
    return TowerConfig(builder="torchvision", name="resnet18", image_size=32, **kw)


def names(tower) -> list[str]:
    return [n.removeprefix("backbone.") for n, _ in tower.named_parameters()]


def trainable(tower) -> set[str]:
    return {n.removeprefix("backbone.") for n, p in tower.named_parameters() if p.requires_grad}


def test_freeze_these_patterns_select_exactly():
    tower = build_tower(resnet(lock_patterns=["conv1.*", "bn1.*", "layer1.*"]), "image")
    frozen = {n for n in names(tower) if n.startswith(("conv1.", "bn1.", "layer1."))}
    assert trainable(tower) == set(names(tower)) - frozen and len(frozen) == 2 + 1 + 12
    assert set(tower.frozen_modules) == {"backbone.conv1", "backbone.bn1", "backbone.layer1"}


def test_train_only_these_patterns_select_exactly():
    tower = build_tower(resnet(train_patterns=["layer4.*", "*.bn2.*"]), "image")
    expected = {n for n in names(tower) if n.startswith("layer4.") or ".bn2." in n}
    assert trainable(tower) == expected


def test_pattern_matching_nothing_fails_with_suggestions():
    with pytest.raises(ValueError, match=r"model.image.lock_patterns: pattern 'layr4\.\*' matches no parameter.*layer4"):
        build_tower(resnet(lock_patterns=["layr4.*"]), "image")
    with pytest.raises(ValueError, match=r"model.text.train_patterns: pattern 'nothing\*' matches no parameter"):
        select_frozen(nn.Linear(2, 2), train_patterns=["nothing*"], option="model.text")


def tiny_config(image: TowerConfig) -> Config:
    return Config(model=ModelConfig(image=image, text=TowerConfig(builder="openclip", model_config=TINY_CLIP),
                                    embed_dim=16))


def one_step(cfg: Config):
    """Build through the training loop's setup, take one optimiser step; return the components."""
    c = setup(cfg, LoopContext(epoch_batches=lambda epoch: [], steps_per_epoch=10))
    c.model.train()
    tokens = tokens_of(c.model.text, ["a red circle", "a blue square", "a green star", "a circle"])
    return c, {"image": torch.randn(4, 3, 32, 32), **tokens}


def test_locked_patterns_untouched_by_a_training_step():
    cfg = tiny_config(resnet(lock_patterns=["conv1.*", "bn1.*", "layer1.*"]))
    c, batch = one_step(cfg)
    tower = c.model.image.backbone
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    train_step(c, batch, grad_clip_norm=1.0)
    after = tower.state_dict()
    for name, param in tower.named_parameters():
        if name.startswith(("conv1.", "bn1.", "layer1.")):
            assert torch.equal(after[name], before[name]) and param.grad is None, name
    for stat in ("bn1.running_mean", "bn1.running_var", "layer1.0.bn1.running_mean", "layer1.1.bn2.running_var"):
        assert torch.equal(after[stat], before[stat]), stat  # locked BatchNorm: statistics frozen
    assert not torch.equal(after["layer4.1.bn2.running_mean"], before["layer4.1.bn2.running_mean"])
    assert not torch.equal(after["layer4.1.conv2.weight"], before["layer4.1.conv2.weight"])
    assert not tower.layer1.training and tower.layer4.training


def test_whole_tower_lock_untouched_and_runs_without_grad():
    c, batch = one_step(tiny_config(resnet(lock=True)))
    before = {k: v.clone() for k, v in c.model.image.state_dict().items()}
    train_step(c, batch, grad_clip_norm=0.0)
    for name, value in c.model.image.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert c.model.locked == {"image": True, "text": False}
    assert not c.model.encode_image(batch["image"], project=False).requires_grad


def test_check_reports_trainable_counts_of_partial_locks():
    report = check(tiny_config(resnet(train_patterns=["layer4.*"])))
    tower = build_tower(resnet(), "image")
    layer4 = sum(p.numel() for n, p in tower.named_parameters() if n.startswith("backbone.layer4."))
    head = 512 * 16 + 16
    assert report["image"] == {"trainable": layer4 + head, "total": sum(p.numel() for p in tower.parameters()) + head}


def test_check_rejects_lock_with_train_patterns():
    with pytest.raises(ValueError, match="model.image: lock: true freezes the whole tower"):
        check(tiny_config(resnet(lock=True, train_patterns=["layer4.*"])))


def test_dual_encoder_lock_flags_still_work():
    image = build_tower(resnet(), "image")
    text = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP), "text")
    model = DualEncoder(image, text, nn.Linear(512, 16), nn.Identity(), lock_image=True)
    model.train()
    assert model.locked["image"] and not model.image.training and model.image_head.training
