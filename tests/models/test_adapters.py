"""Adapters on the HuggingFace text tower: only the adapter trains, it learns, and it reloads."""
from __future__ import annotations

import pytest
import torch

from raykd.config.loading import config_to_dict
from raykd.config.schema import Config, HeadConfig, ModelConfig, TowerConfig
from raykd.losses import get_loss
from raykd.models.adapters import adapter_config, list_adapters
from raykd.models.dual_encoder import build_dual_encoder, count_parameters
from raykd.models.towers import build_tower
from raykd.models.checkpoint import load_model
from raykd.train import checkpoint as ckpt
from tests.conftest import TINY_CLIP
from tests.models.conftest import tokens_of

METHODS = ["bottleneck", "lang_adapter", "prefix_tuning", "compacter", "lora", "ia3", "mam", "unipelt"]
SENTENCES = ["a dog runs on the grass", "the stock market fell", "a red circle in the corner",
             "she plays the violin", "rain is expected tomorrow", "two cats sleep on a sofa"]


def test_every_method_is_offered():
    assert list_adapters() == sorted(METHODS)


@pytest.fixture(scope="module")
def plain_params(minilm_path) -> int:
    return count_parameters(build_tower(TowerConfig(builder="huggingface", name=minilm_path), "text"))[1]


def adapter_config_for(minilm_path: str, method: str, **overrides) -> Config:
    text = TowerConfig(builder="huggingface", name=minilm_path, max_seq_length=16, adapter=method,
                       adapter_config=overrides, head=HeadConfig(identity_if_possible=True))
    image = TowerConfig(builder="openclip", model_config=TINY_CLIP, lock=True)
    return Config(model=ModelConfig(image=image, text=text, embed_dim=384))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_adapter_trains_alone_learns_and_reloads(method, minilm_path, plain_params, tmp_path):
    cfg = adapter_config_for(minilm_path, method)
    model = build_dual_encoder(cfg.model)
    # 1. only the adapter's parameters train: exactly those the method added to the model
    trainable, total = count_parameters(model.text)
    assert trainable == total - plain_params > 0
    assert {n for n, p in model.text.named_parameters() if p.requires_grad} == set(model.text.added_params)
    assert not model.locked["text"] and count_parameters(model.text_head) == (0, 0)  # identity head
    # 2. a few steps lower a small contrastive loss (InfoNCE against fixed random targets)
    tokens = tokens_of(model.text, SENTENCES)
    targets = torch.nn.functional.normalize(torch.randn(len(SENTENCES), 384, generator=torch.Generator().manual_seed(0)), dim=-1)
    loss_fn, scale = get_loss("InfoNCE"), torch.tensor(20.0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    model.text.eval()  # no dropout: the loss moves only through the adapter
    losses = []
    for _ in range(4):
        loss = loss_fn(targets, model.encode_text(tokens, normalize=False), logit_scale=scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses
    # 3. the saved checkpoint reloads (architecture from its config) into the same outputs
    ckpt.save_state(tmp_path, model=model, loss=loss_fn, optimizer=optimizer,
                    scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), scaler=None,
                    step=4, epoch=0, batches_done=4, config=config_to_dict(cfg))
    reloaded, _ = load_model(tmp_path)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encode_text(tokens), model.encode_text(tokens), atol=1e-5, rtol=1e-5)


def test_original_defaults_and_overrides():
    assert adapter_config("bottleneck", {}).reduction_factor == 16
    assert adapter_config("bottleneck", {}).non_linearity == "relu"
    assert adapter_config("prefix_tuning", {}).prefix_length == 30
    lora = adapter_config("lora", {})
    assert (lora.r, lora.alpha) == (8, 16)
    assert adapter_config("lora", {"r": 4}).r == 4


def test_override_changes_the_adapter_size(tiny_bert_dir):
    def trainable(r):
        cfg = TowerConfig(builder="huggingface", name=tiny_bert_dir, adapter="lora", adapter_config={"r": r})
        return count_parameters(build_tower(cfg, "text"))[0]

    assert trainable(4) * 2 == trainable(8) > 0


def test_bad_adapter_settings_fail_clearly(tiny_bert_dir):
    cfg = TowerConfig(builder="huggingface", name=tiny_bert_dir, adapter="lora", adapter_config={"rank": 4})
    with pytest.raises(ValueError, match=r"model.text.adapter_config: .*rank.*LoRAConfig fields: \[.*'r'"):
        build_tower(cfg, "text")
    with pytest.raises(ValueError, match="unknown adapter method 'lora_adapter'; valid"):
        adapter_config("lora_adapter", {})


def test_locking_keeps_the_adapter_trainable(tiny_bert_dir):
    cfg = TowerConfig(builder="huggingface", name=tiny_bert_dir, adapter="ia3", lock=True)
    tower = build_tower(cfg, "text")
    assert {n for n, p in tower.named_parameters() if p.requires_grad} == set(tower.added_params) != set()
