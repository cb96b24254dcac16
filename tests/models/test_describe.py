"""`describe_tower`: every builder's image spec / tokenizer without building, equal to the built tower's."""
from __future__ import annotations

import dataclasses

import pytest

from raykd.config.schema import TowerConfig
from raykd.models import _registry
from raykd.models.towers import TowerDescription, build_tower, describe_tower, list_builders
from tests.conftest import TINY_CLIP
from tests.models.conftest import tower_config
from tests.models.test_towers import TINY

TEXTS = ["a red circle", "a blue square means this"]

# Beyond the tiny config of each builder (TINY): the paths that read other metadata.
EXTRA = [
    (dict(builder="openclip", model_config=TINY_CLIP, image_size=48), "image"),
    (dict(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=4), "text"),
    (dict(builder="openclip", name="RN50"), "image"),  # the built-in model config's size, OpenAI mean/std
    (dict(builder="openclip", name="RN50"), "text"),  # its tokenizer and context length
    (dict(builder="torchvision", name="mobilenet_v3_small"), "image"),  # the default weights' crop size
    (dict(builder="timm", name="test_vit"), "image"),  # the pretrained config's input size and mean/std
    (dict(builder="timm", name="resnet18", image_size=64), "image"),
    (dict(builder="huggingface", name="{bert}", pooler="PromptBERT", max_seq_length=16), "text"),
    (dict(builder="huggingface", name="{minilm}", max_seq_length=12), "text"),
]
CASES = [(TINY[k], k[1]) for k in sorted(TINY)] + EXTRA


def _id(case) -> str:
    fields, modality = case
    extra = "-".join(f"{k}={v}" for k, v in fields.items() if k not in ("builder", "name", "model_config"))
    return "-".join(filter(None, [fields["builder"], modality, fields.get("name", "inline").strip("{}"), extra]))


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_describe_equals_the_built_tower(case, request):
    fields, modality = case
    cfg = tower_config(fields, request)
    described, tower = describe_tower(cfg, modality), build_tower(cfg, modality)
    assert described.image_spec == tower.image_spec
    if modality == "image":
        assert described.tokenizer is None and described.image_spec is not None
        return
    assert type(described.tokenizer) is type(tower.tokenizer)
    assert described.tokenizer.__getstate__() == tower.tokenizer.__getstate__()
    got, want = described.tokenizer(TEXTS), tower.tokenizer(TEXTS)
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)


@pytest.mark.parametrize("key", [(b, m) for m in ("image", "text") for b in list_builders(m)],
                         ids=lambda k: f"{k[0]}-{k[1]}")
def test_describe_never_builds(key, request, monkeypatch):
    """Contract over the registry: every builder registers a describe function that builds nothing."""
    entry = _registry._BUILDERS[key]
    assert entry.describe is not None, f"register a describe function for {key}"

    def no_build(cfg, option):
        raise AssertionError(f"describe_tower built the {key} tower")

    monkeypatch.setitem(_registry._BUILDERS, key, dataclasses.replace(entry, build=no_build))
    described = describe_tower(tower_config(TINY[key], request), key[1])
    assert isinstance(described, TowerDescription)
    assert (described.image_spec is not None) == (key[1] == "image") and (described.tokenizer is not None) == (key[1] == "text")


def test_describe_reads_the_pretrained_preprocessing_without_downloading(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = describe_tower(TowerConfig(builder="openclip", name="ViT-B-16-SigLIP", pretrained="webli"), "image").image_spec
    assert spec.size == 224 and spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)
    spec = describe_tower(TowerConfig(builder="torchvision", name="resnet18", pretrained="IMAGENET1K_V1"), "image").image_spec
    assert spec.size == 224
    spec = describe_tower(TowerConfig(builder="timm", name="test_vit", pretrained="default"), "image").image_spec
    assert spec.size == 160 and spec.mean == (0.5, 0.5, 0.5)


def test_describe_validates_first():
    with pytest.raises(ValueError, match="unknown open_clip model 'RN5O'"):
        describe_tower(TowerConfig(builder="openclip", name="RN5O"), "image")
    with pytest.raises(ValueError, match=r"unknown image tower builder 'torchvison'.*did you mean 'torchvision'"):
        describe_tower(TowerConfig(builder="torchvison", name="resnet18"), "image")
