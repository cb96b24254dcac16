"""Projection heads: raykd's MLP count (hidden layers) and DINO's (Linear layers), DINO's initialisation."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from raykd.config.schema import HeadConfig
from raykd.models.heads import build_head


def linears(head: nn.Module) -> list[nn.Linear]:
    return [m for m in head.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("n_layers, widths", [
    (1, [(16, 8)]),
    (2, [(16, 24), (24, 8)]),  # the original's `--image-head-n-layers 2`: Linear-GELU-Linear
    (3, [(16, 24), (24, 24), (24, 8)]),
])
def test_dino_style_counts_every_linear_layer(n_layers, widths):
    head = build_head(HeadConfig(style="dino", n_layers=n_layers, hidden_dim=24), 16, 8)
    assert [(m.in_features, m.out_features) for m in linears(head)] == widths
    assert sum(isinstance(m, nn.GELU) for m in head.modules()) == n_layers - 1
    assert head(torch.randn(5, 16)).shape == (5, 8)


def test_mlp_style_keeps_counting_hidden_layers():
    """The default: n_layers 2 is two hidden blocks, then the output Linear (three Linear layers)."""
    assert len(linears(build_head(HeadConfig(n_layers=2, hidden_dim=24), 16, 8))) == 3
    assert len(linears(build_head(HeadConfig(style="mlp", n_layers=2, hidden_dim=24), 16, 8))) == 3


def test_dino_style_zero_layers_is_the_identity_and_needs_equal_widths():
    assert isinstance(build_head(HeadConfig(style="dino", n_layers=0), 8, 8), nn.Identity)
    with pytest.raises(ValueError, match=r"model.image.head.n_layers: 0 with style 'dino' is the identity.*\(16\) "
                                         r"must equal model.embed_dim \(8\)"):
        build_head(HeadConfig(style="dino", n_layers=0), 16, 8, "model.image.head")


def test_dino_style_initialisation():
    """DINOHead._init_weights: truncated normal (std 0.02) weights, zero biases; torch's default would be
    uniform with std 1/sqrt(3 * 512) = 0.0255."""
    torch.manual_seed(0)
    head = build_head(HeadConfig(style="dino", n_layers=2, hidden_dim=512), 512, 512)
    for layer in linears(head):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert torch.count_nonzero(layer.bias) == 0


def test_negative_depth_fails_naming_the_option():
    with pytest.raises(ValueError, match=r"model.text.head.n_layers must be >= 0, got -1"):
        build_head(HeadConfig(n_layers=-1), 8, 8, "model.text.head")
