"""CoOp prompt tuning on the open_clip text tower: context after the start token, EOT pooled."""
from __future__ import annotations

import torch

from raykd.config.schema import ModelConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.towers import build_tower
from tests.conftest import TINY_CLIP
from tests.models.conftest import tokens_of

N_CTX = 3
EOT = 49407  # open_clip's end-of-text token (the highest id: what 'argmax' pooling finds)


def coop_tower(**kw):
    return build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=N_CTX, **kw), "text")


def test_pooled_token_is_the_end_of_text_token_after_insertion():
    tower = coop_tower()
    text = tower.backbone
    ids = tokens_of(tower, ["a red circle", "a small blue square in the top left corner"])["input_ids"]
    assert ids.shape == (2, 16 - N_CTX)  # the tokenizer leaves room for the context
    inserted = torch.cat([ids[:, :1], torch.full((2, N_CTX), -1), ids[:, 1:]], dim=1)  # -1 marks the context
    index = text.pool_index(ids)
    assert (inserted[torch.arange(2), index] == EOT).all()
    assert (index == ids.argmax(-1) + N_CTX).all()  # the original pooled ids.argmax(-1): N_CTX tokens early

    seen = {}
    text.clip.ln_final.register_forward_hook(lambda m, i, out: seen.setdefault("x", out))
    out = tower({"input_ids": ids})
    expected = seen["x"][torch.arange(2), index] @ text.clip.text_projection
    stale = seen["x"][torch.arange(2), ids.argmax(-1)] @ text.clip.text_projection
    assert torch.allclose(out, expected, atol=1e-6) and not torch.allclose(out, stale, atol=1e-3)


def test_context_sits_after_the_start_token():
    tower = coop_tower()
    clip = tower.backbone.clip
    seen = {}
    clip.transformer.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    ids = tokens_of(tower, ["a red circle"])["input_ids"]
    tower({"input_ids": ids})
    x = seen["x"] - clip.positional_embedding  # [1, 16, W]: token embeddings with the context inserted
    assert torch.allclose(x[0, 0], clip.token_embedding.weight[ids[0, 0]], atol=1e-6)
    assert torch.allclose(x[0, 1:1 + N_CTX], tower.backbone.prompt, atol=1e-6)
    assert torch.allclose(x[0, 1 + N_CTX:], clip.token_embedding.weight[ids[0, 1:]], atol=1e-6)


def test_locked_tower_trains_only_the_context():
    text = TowerConfig(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=N_CTX, lock=True)
    model = build_dual_encoder(ModelConfig(image=TowerConfig(builder="openclip", model_config=TINY_CLIP), text=text,
                                           embed_dim=16))
    assert [n for n, p in model.text.named_parameters() if p.requires_grad] == ["backbone.prompt"]
    assert not model.locked["text"]  # runs with gradients so they reach the context
    model.train()
    assert not model.text.backbone.clip.training  # the frozen transformer stays in eval mode
    model.encode_text(tokens_of(model.text, ["a red circle"])).sum().backward()
    assert model.text.backbone.prompt.grad.abs().sum() > 0
