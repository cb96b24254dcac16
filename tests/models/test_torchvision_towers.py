"""torchvision towers: which features the tower exposes (`features: pre_logits | pooled`)."""
from __future__ import annotations

import pytest
import torch

from raykd.config.schema import TowerConfig
from raykd.models.towers import build_tower, validate_tower
from tests.conftest import TINY_CLIP


@pytest.mark.parametrize("name, features, width", [
    ("mobilenet_v3_large", "pre_logits", 1280),  # Linear(960, 1280) + Hardswish + Dropout kept
    ("mobilenet_v3_large", "pooled", 960),  # the whole classifier removed, as the original codebase
    ("resnet18", "pooled", 512),  # a lone `fc`: the same either way
])
def test_features_option_sets_the_exposed_width(name, features, width):
    tower = build_tower(TowerConfig(builder="torchvision", name=name, image_size=64, features=features), "image").eval()
    with torch.no_grad():
        out = tower(torch.randn(2, 3, 64, 64))
    assert tower.output_dim == width and out.shape == (2, width)


def test_pooled_keeps_what_comes_before_the_first_linear():
    """ConvNeXt's classifier is LayerNorm2d + Flatten + Linear: pooled keeps the norm and the flatten."""
    tower = build_tower(TowerConfig(builder="torchvision", name="convnext_tiny", image_size=32, features="pooled"),
                        "image")
    assert [type(m).__name__ for m in tower.backbone.classifier] == ["LayerNorm2d", "Flatten"]
    assert tower(torch.randn(2, 3, 32, 32)).shape == (2, 768) == (2, tower.output_dim)


def test_features_is_refused_by_builders_without_it():
    with pytest.raises(ValueError, match="model.image.features 'pooled' needs the torchvision image tower, "
                                         "not the openclip image tower"):
        validate_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, features="pooled"), "image")
