"""`validate_tower`: one set of tower rules for `build_tower` and `raykd check`, declared by the builders."""
from __future__ import annotations

import dataclasses

import pytest

from raykd.config.schema import TowerConfig
from raykd.models import _registry
from raykd.models.towers import build_tower, list_builders, validate_tower
from tests.conftest import TINY_CLIP
from tests.models.conftest import tower_config
from tests.models.test_towers import TINY

REGISTERED = [(b, m) for m in ("image", "text") for b in list_builders(m)]


@pytest.mark.parametrize("key", REGISTERED, ids=lambda k: f"{k[0]}-{k[1]}")
def test_validate_builds_nothing(key, request, monkeypatch):
    """Contract over the registry: the tiny config of every builder validates without building."""
    def no_build(cfg, option):
        raise AssertionError(f"validate_tower built the {key} tower")

    monkeypatch.setitem(_registry._BUILDERS, key, dataclasses.replace(_registry._BUILDERS[key], build=no_build))
    validate_tower(tower_config(TINY[key], request), key[1])


def test_capabilities_are_declared_by_the_builders():
    entries = _registry._BUILDERS
    assert [k for k, e in entries.items() if e.adapters] == [("huggingface", "text")]
    assert [k for k, e in entries.items() if e.coop] == [("openclip", "text")]
    assert [k for k, e in entries.items() if "PromptBERT" in e.poolers] == [("huggingface", "text")]


@pytest.mark.parametrize("fields, modality, message", [
    (dict(builder="openclip", model_config=TINY_CLIP, adapter="lora"), "text",
     r"model.text.adapter 'lora' needs a HuggingFace text tower \(model.text.builder: huggingface\), not the openclip text tower"),
    (dict(builder="torchvision", name="resnet18", adapter="ia3"), "image",
     r"model.image.adapter 'ia3' needs a HuggingFace text tower \(model.image.builder: huggingface\), not the torchvision image tower"),
    (dict(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=4), "image",
     r"model.image.coop_n_ctx \(CoOp\) needs the openclip text tower, not the openclip image tower"),
    (dict(builder="sbert", name="x", pooler="logits"), "text", "model.text.pooler 'logits' needs the huggingface builder, not 'sbert'"),
    (dict(builder="openclip", model_config=TINY_CLIP, lock=True, train_patterns=["ln_*"]), "text",
     "model.text: lock: true freezes the whole tower"),
    (dict(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=-1), "text", "model.text.coop_n_ctx must be >= 0, got -1"),
    (dict(builder="openclip", name="RN50", pretrained="opneai"), "image", "model.image.pretrained: unknown tag 'opneai'"),
    (dict(builder="timm", name="test_vit", pretrained="in99k"), "image", "unknown timm tag 'in99k' for test_vit"),
    (dict(builder="torchvision", name="resnet18", grad_checkpointing=True), "image",
     "model.image.grad_checkpointing: torchvision models do not support gradient checkpointing"),
    (dict(builder="huggingface", name="bert-base-uncased", adapter="lora", adapter_config={"rank": 4}), "text",
     "model.text.adapter_config: .*LoRAConfig fields"),
    (dict(builder="huggingface", name="bert-base-uncased", pooler="PromptBERT", prompt_template="{sentence} no mask"),
     "text", "model.text.prompt_template: .*needs one '{sentence}' and one '{mask}'"),
])
def test_check_and_build_share_one_rule(fields, modality, message):
    """The same config fails `validate_tower` (raykd check) and `build_tower` with the same message."""
    cfg = TowerConfig(**fields)
    with pytest.raises(ValueError, match=message) as checked:
        validate_tower(cfg, modality)
    with pytest.raises(ValueError) as built:
        build_tower(cfg, modality)
    assert str(built.value) == str(checked.value)


def test_pretrained_tags_are_checked_offline_without_downloading(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    validate_tower(TowerConfig(builder="openclip", name="RN50", pretrained="openai"), "image")
    validate_tower(TowerConfig(builder="openclip", name="RN50", pretrained="weights/not-yet-there.pt"), "image")
    validate_tower(TowerConfig(builder="torchvision", name="resnet18", pretrained="ResNet18_Weights.IMAGENET1K_V1"), "image")
    validate_tower(TowerConfig(builder="timm", name="test_vit.r160_in1k", pretrained="default"), "image")
    validate_tower(TowerConfig(builder="huggingface", name="some-org/not-cached-bert", adapter="lora"), "text")


def test_a_missing_weights_file_given_as_pretrained_fails_at_build(tmp_path):
    cfg = TowerConfig(builder="openclip", name="RN50", pretrained=str(tmp_path / "nope.pt"))
    validate_tower(cfg, "image")  # the file may be put there before training
    with pytest.raises(FileNotFoundError, match=r"model.image.pretrained: weights file not found: .*nope.pt"):
        build_tower(cfg, "image")
