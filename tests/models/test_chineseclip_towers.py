"""Chinese-CLIP towers: the halves of a tiny random ChineseCLIPModel saved locally, against the model itself."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from raykd.config.schema import ModelConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.towers import PretrainedUnavailableError, build_tower, describe_tower, validate_tower
from tests.models.conftest import infonce_losses, tokens_of


def test_towers_give_the_models_own_embeddings(tiny_chineseclip_dir):
    from transformers import ChineseCLIPModel

    image = build_tower(TowerConfig(builder="chineseclip", name=tiny_chineseclip_dir), "image").eval()
    text = build_tower(TowerConfig(builder="chineseclip", name=tiny_chineseclip_dir, max_seq_length=8), "text").eval()
    reference = ChineseCLIPModel.from_pretrained(tiny_chineseclip_dir).eval()
    images, tokens = torch.randn(2, 3, 32, 32), tokens_of(text, ["一只红色的猫", "蓝色的方形"])
    with torch.no_grad():
        out = reference(pixel_values=images, **tokens)
        assert torch.allclose(F.normalize(image(images), dim=-1), out.image_embeds, atol=1e-5)
        assert torch.allclose(F.normalize(text(tokens), dim=-1), out.text_embeds, atol=1e-5)
    assert image.output_dim == text.output_dim == 12
    assert image.source_logit_scale == pytest.approx(reference.logit_scale.exp().item())
    assert describe_tower(TowerConfig(builder="chineseclip", name=tiny_chineseclip_dir), "image").image_spec.size == 32


def test_a_chineseclip_dual_encoder_trains(tiny_chineseclip_dir):
    """Both towers, the model's own logit scale; InfoNCE on a fixed batch falls within 5 AdamW steps."""
    torch.manual_seed(0)
    tower = dict(builder="chineseclip", name=tiny_chineseclip_dir, max_seq_length=8)
    model = build_dual_encoder(ModelConfig(image=TowerConfig(**tower), text=TowerConfig(**tower), embed_dim=12,
                                           init_logit_scale="pretrained"))
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-4)  # ChineseCLIPConfig's initial value
    images, tokens = torch.randn(4, 3, 32, 32), tokens_of(model.text, ["一只猫", "一只狗", "红色圆形", "蓝色方形"])
    losses = infonce_losses(model, images, tokens, lr=1e-3)
    assert losses[-1] < losses[0] - 0.1, losses


def test_name_is_required_and_missing_models_say_where_to_put_them(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="model.image.name: a Chinese-CLIP hub id"):
        validate_tower(TowerConfig(builder="chineseclip"), "image")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailableError, match="model.text.name: the Chinese-CLIP model 'OFA-Sys/nope' "
                                                         "could not be loaded"):
        build_tower(TowerConfig(builder="chineseclip", name="OFA-Sys/nope", cache_dir=str(tmp_path)), "text")


def test_image_spec_reads_the_models_image_processor(tiny_chineseclip_dir, tmp_path):
    import shutil

    from transformers import ChineseCLIPImageProcessor

    shutil.copytree(tiny_chineseclip_dir, tmp_path / "model")
    ChineseCLIPImageProcessor(image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25]).save_pretrained(tmp_path / "model")
    spec = describe_tower(TowerConfig(builder="chineseclip", name=str(tmp_path / "model")), "image").image_spec
    assert (spec.size, spec.mean, spec.std) == (32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
