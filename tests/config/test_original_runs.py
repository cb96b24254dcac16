"""The original codebase's three sample runs, as its README wrote them (see the README's table): data per
epoch, head depths, feature widths, logit-scale initialisation. Random or tiny local weights; no download."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from raykd.config import ConfigError, load_config
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.heads import build_head
from raykd.models.towers import build_tower
from tests.conftest import REPO, TINY_CLIP

LIT = REPO / "recipes/lit/mobilenetv3-h2-rn50text-locked-yfcc.yaml"
FINETUNE = REPO / "recipes/clip/rn50-openai-finetune-cc3m.yaml"
SCRATCH = REPO / "recipes/clip/rn50-scratch-cc3m.yaml"


def test_lit_image_tower_is_960_wide_under_a_two_linear_dino_head():
    """`--image-head-n-layers 2` on mobilenet_v3_large with its classifier removed: Linear(960, 2048)-GELU-
    Linear(2048, 1024); the text head (`--text-head-n-layers 0`) is the identity."""
    cfg = load_config(LIT, ["model.image.pretrained="])  # random weights: nothing downloaded
    tower = build_tower(cfg.model.image, "image")
    with torch.no_grad():
        features = tower.eval()(torch.randn(1, 3, 224, 224))
    assert tower.output_dim == 960 and features.shape == (1, 960)
    head = build_head(cfg.model.image.head, tower.output_dim, cfg.model.embed_dim)
    widths = [(m.in_features, m.out_features) for m in head.modules() if isinstance(m, nn.Linear)]
    assert widths == [(960, 2048), (2048, 1024)]
    assert isinstance(build_head(cfg.model.text.head, 1024, cfg.model.embed_dim), nn.Identity)
    assert cfg.model.image.lock and cfg.model.text.lock  # 'L[mobilenet_v3_large-h2]-L[CLIP-from-RN50]'


@pytest.mark.parametrize("recipe, dataset_size, samples_per_epoch", [
    (LIT, 14_000_000, 2_000_000),  # --dataset-size 14000000 --episode-size 2000000
    (SCRATCH, 2_500_000, 2_500_000),  # --dataset-size 2500000 --episode-size 2500000
    (FINETUNE, 2_500_000, 0),  # --dataset-size 2500000 --episode-size 0: full passes
])
def test_data_per_epoch_as_the_original(recipe, dataset_size, samples_per_epoch):
    """The original drew each episode with replacement (np.random.choice(dataset_size, episode_size,
    replace=True)): raykd's `samples_per_epoch`, not `episode_size` (without replacement)."""
    data = load_config(recipe).data
    assert (data.dataset_size, data.samples_per_epoch, data.episode_size) == (dataset_size, samples_per_epoch, 0)


def _tiny_finetune(tmp_path, weights: str):
    clip = json.dumps(TINY_CLIP)
    sets = [f"model.{m}.{k}={v}" for m in ("image", "text")
            for k, v in (("model_config", clip), ("name", ""), ("pretrained", weights))]
    return build_dual_encoder(load_config(FINETUNE, sets + ["model.embed_dim=16"]).model)


def test_finetune_starts_at_the_pretrained_logit_scale(tmp_path):
    """A tiny open_clip CLIP saved with logit scale 100 (OpenAI's RN50 value) stands in for the OpenAI weights."""
    from open_clip.model import CLIP

    torch.manual_seed(0)
    source = CLIP(**TINY_CLIP)
    with torch.no_grad():
        source.logit_scale.fill_(math.log(100.0))
    torch.save(source.state_dict(), tmp_path / "tiny-clip.pt")
    model = _tiny_finetune(tmp_path, str(tmp_path / "tiny-clip.pt"))
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)
    assert torch.equal(model.image.backbone.conv1.weight, source.visual.conv1.weight)  # the weights came too
    fresh = _tiny_finetune(tmp_path, "")  # no weights: the model's own initial scale, open_clip's 1/0.07
    assert fresh.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_pretrained_scale_needs_a_tower_that_has_one():
    cfg = load_config(LIT, ["model.init_logit_scale=pretrained", "model.image.pretrained=", "model.image.name=resnet18",
                            "model.text.builder=torchvision", "model.text.name=x"]).model
    cfg.text = cfg.image  # a model without any logit scale of its own (two torchvision towers)
    with pytest.raises(ValueError, match="model.init_logit_scale: 'pretrained' needs a tower cut from a model "
                                         "with a logit scale"):
        from raykd.models.dual_encoder import initial_logit_scale

        tower = build_tower(cfg.image, "image")
        initial_logit_scale(cfg, tower, tower)


@pytest.mark.parametrize("value, message", [
    ("maybe", r"'model.init_logit_scale' must be float or 'pretrained', got 'maybe'"),
    ("-1", r"model.init_logit_scale must be > 0 or 'pretrained', got -1"),
])
def test_init_logit_scale_values(value, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        load_config(FINETUNE, [f"model.init_logit_scale={value}"])
    assert load_config(FINETUNE, ["model.init_logit_scale=20"]).model.init_logit_scale == 20.0
