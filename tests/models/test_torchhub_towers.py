"""torch.hub towers: entry points of a local hub directory or of the hub cache, never the network."""
from __future__ import annotations

import shutil

import pytest
import torch

from raykd.config.schema import ModelConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.towers import PretrainedUnavailableError, build_tower, validate_tower
from tests.conftest import TINY_CLIP
from tests.models.conftest import infonce_losses


def hub(name: str, **fields) -> TowerConfig:
    return TowerConfig(builder="torchhub", name=name, image_size=32, **fields)


def test_width_from_a_dummy_forward(tiny_hub_dir):
    """A feature map [B, 10, 8, 8] is averaged over space; a [B, 6] output is taken as it is."""
    conv = build_tower(hub(f"{tiny_hub_dir}:tiny_convnet", model_config={"width": 10}), "image")
    assert conv.output_dim == 10 and conv(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    images = torch.randn(2, 3, 32, 32)
    assert torch.allclose(conv(images), conv.backbone(images).mean(dim=(2, 3)))
    mlp = build_tower(hub(f"{tiny_hub_dir}:tiny_mlp"), "image")  # no `pretrained` argument: none passed
    assert mlp.output_dim == 6 and mlp.image_spec.size == 32


def test_from_the_hub_cache_without_network(tiny_hub_dir, tmp_path):
    """'owner/repo:ref:entry' is read from <hub dir>/owner_repo_ref, where torch.hub.load caches GitHub repos."""
    shutil.copytree(tiny_hub_dir, tmp_path / "someone_tinyhub_main")
    tower = build_tower(hub("someone/tinyhub:main:tiny_convnet", cache_dir=str(tmp_path)), "image")
    assert tower.output_dim == 8
    tower = build_tower(hub("someone/tinyhub:tiny_convnet", cache_dir=str(tmp_path)), "image")  # the one cached ref
    assert tower.output_dim == 8
    with pytest.raises(PretrainedUnavailableError, match=r"model.image.name: the torch.hub repo 'someone/other:main' "
                                                         r"is not in the hub cache.*git clone the repo to .*/someone_other_main"):
        build_tower(hub("someone/other:main:tiny_convnet", cache_dir=str(tmp_path)), "image")


def test_a_torchhub_image_tower_trains(tiny_hub_dir):
    torch.manual_seed(0)
    model = build_dual_encoder(ModelConfig(image=hub(f"{tiny_hub_dir}:tiny_convnet"),
                                           text=TowerConfig(builder="openclip", model_config=TINY_CLIP), embed_dim=16))
    images = torch.randn(4, 3, 32, 32)
    tokens = {k: torch.as_tensor(v) for k, v in model.text_tokenizer(["a", "b c", "d e f", "g"]).items()}
    losses = infonce_losses(model, images, tokens, lr=1e-2)
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("fields, message", [
    (dict(name="just_a_name"), "model.image.name: expected 'REPO_OR_DIR:ENTRYPOINT'"),
    (dict(name="owner/repo:main:dino", pretrained="IMAGENET"), "model.image.pretrained: torchhub takes 'default'"),
])
def test_bad_names_fail_clearly(fields, message):
    with pytest.raises(ValueError, match=message):
        validate_tower(TowerConfig(builder="torchhub", **fields), "image")


def test_unknown_entry_point_and_pretrained_without_weights(tiny_hub_dir):
    with pytest.raises(ValueError, match=r"has no entry point 'tiny_vit'; it has \['tiny_convnet', 'tiny_mlp'\]"):
        build_tower(hub(f"{tiny_hub_dir}:tiny_vit"), "image")
    with pytest.raises(ValueError, match="model.image.pretrained: the entry point 'tiny_mlp' takes no 'pretrained'"):
        build_tower(hub(f"{tiny_hub_dir}:tiny_mlp", pretrained="default"), "image")
