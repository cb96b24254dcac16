"""Optimiser: decay-free parameters, layer-wise learning-rate decay, backbone/head ratio, timm's optimizers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from raykd.config.schema import HeadConfig, ModelConfig, OptimConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder
from raykd.train.optim import build_optimizer, build_scheduler, param_groups
from tests.conftest import TINY_CLIP
from tests.models.conftest import TINY_CLIP_4, minilm_path  # noqa: F401  (fixture)

LR = 1e-3


def model_of(image: TowerConfig, text: TowerConfig | None = None, **kw):
    text = text or TowerConfig(builder="openclip", model_config=TINY_CLIP)
    return build_dual_encoder(ModelConfig(image=image, text=text, embed_dim=16, **kw))


def lr_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> float:
    (lr,) = [g["lr"] for g in optimizer.param_groups if any(p is param for p in g["params"])]
    return lr


def decay_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> float:
    (wd,) = [g["weight_decay"] for g in optimizer.param_groups if any(p is param for p in g["params"])]
    return wd


def test_weight_decay_skips_biases_norms_embeddings_and_logit_scale():
    model = model_of(TowerConfig(builder="timm", name="test_vit", image_size=32))
    opt = build_optimizer(OptimConfig(weight_decay=0.1), {"model": model})
    vit, text = model.image.backbone, model.text.backbone.clip
    for param in (vit.cls_token, vit.pos_embed, vit.blocks[0].norm1.weight, vit.blocks[0].attn.qkv.bias,
                  text.token_embedding.weight, text.positional_embedding, model.logit_scale):
        assert decay_of(opt, param) == 0.0
    for param in (vit.blocks[0].attn.qkv.weight, vit.patch_embed.proj.weight, model.image_head.weight):
        assert decay_of(opt, param) == 0.1
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(p.requires_grad for p in model.parameters())


def test_layer_decay_on_a_vision_transformer():
    """4 blocks, decay d: stem d^5, block 1 d^4, block 3 d^2, block 4 d^1, final norm/proj and heads d^0."""
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP_4))
    d = 0.5
    opt = build_optimizer(OptimConfig(lr=LR, image_layer_decay=d), {"model": model})
    vit = model.image.backbone
    blocks = vit.transformer.resblocks
    assert lr_of(opt, vit.conv1.weight) == pytest.approx(LR * d ** 5)
    assert lr_of(opt, vit.class_embedding) == pytest.approx(LR * d ** 5)
    assert lr_of(opt, blocks[0].attn.in_proj_weight) == pytest.approx(LR * d ** 4)  # first block
    assert lr_of(opt, blocks[2].mlp.c_fc.weight) == pytest.approx(LR * d ** 2)  # a middle block
    assert lr_of(opt, blocks[3].ln_2.weight) == pytest.approx(LR * d ** 1)  # last block
    assert lr_of(opt, vit.proj) == lr_of(opt, vit.ln_post.weight) == pytest.approx(LR)
    assert lr_of(opt, model.image_head.weight) == lr_of(opt, model.logit_scale) == pytest.approx(LR)
    assert lr_of(opt, model.text.backbone.clip.transformer.resblocks[0].ln_1.weight) == pytest.approx(LR)  # text: off
    assert opt.param_groups[0]["lr"] == pytest.approx(LR)  # the reported base rate


def test_layer_decay_on_a_resnet_by_depth():
    """ResNet-18: 8 BasicBlocks in 4 stages; the stem gets d^9, layer1.0 d^8, layer3.0 d^4, layer4.1 d^1."""
    model = model_of(TowerConfig(builder="torchvision", name="resnet18", image_size=32))
    d = 0.8
    opt = build_optimizer(OptimConfig(lr=LR, image_layer_decay=d, backbone_lr_ratio=0.5), {"model": model})
    net = model.image.backbone
    assert lr_of(opt, net.conv1.weight) == pytest.approx(LR * 0.5 * d ** 9)
    assert lr_of(opt, net.layer1[0].conv1.weight) == pytest.approx(LR * 0.5 * d ** 8)
    assert lr_of(opt, net.layer3[0].downsample[0].weight) == pytest.approx(LR * 0.5 * d ** 4)
    assert lr_of(opt, net.layer4[1].bn2.bias) == pytest.approx(LR * 0.5 * d)
    assert lr_of(opt, model.image_head.weight) == pytest.approx(LR)


@pytest.mark.parametrize("unit, n_rates", [("stage", 6), ("block", 18)])
def test_layer_decay_per_stage_or_per_block_on_a_resnet50(unit, n_rates):
    """ResNet-50: 16 Bottlenecks in 4 stages. Per stage (the original codebase's layer1..layer4): the stem d^5,
    layer1 d^4 .. layer4 d^1, the head d^0: 6 rates. Per block: the stem d^17 .. layer4.2 d^1, the head: 18."""
    model = model_of(TowerConfig(builder="torchvision", name="resnet50", image_size=32))
    d = 0.5
    opt = build_optimizer(OptimConfig(lr=LR, image_layer_decay=d, layer_decay_unit=unit), {"model": model})
    net = model.image.backbone
    rates = {round(lr_of(opt, p) / LR, 12) for p in [*net.parameters(), *model.image_head.parameters()]}
    assert rates == {round(d ** k, 12) for k in range(n_rates)}
    if unit == "stage":
        assert lr_of(opt, net.conv1.weight) == pytest.approx(LR * d ** 5)
        assert lr_of(opt, net.layer1[0].conv1.weight) == lr_of(opt, net.layer1[2].bn3.weight) == pytest.approx(LR * d ** 4)
        assert lr_of(opt, net.layer4[2].conv3.weight) == pytest.approx(LR * d)


def test_layer_decay_on_the_text_transformer(minilm_path):
    text = TowerConfig(builder="huggingface", name=minilm_path, max_seq_length=16)
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP), text)
    opt = build_optimizer(OptimConfig(lr=LR, text_layer_decay=0.5), {"model": model})
    bert = model.text.backbone
    assert lr_of(opt, bert.embeddings.word_embeddings.weight) == pytest.approx(LR * 0.5 ** 7)
    assert lr_of(opt, bert.encoder.layer[0].attention.self.query.weight) == pytest.approx(LR * 0.5 ** 6)
    assert lr_of(opt, bert.encoder.layer[5].output.dense.weight) == pytest.approx(LR * 0.5)


def test_backbone_ratio_leaves_heads_and_added_parameters_at_full_rate():
    text = TowerConfig(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=2, head=HeadConfig(n_layers=1, hidden_dim=8))
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP), text)
    opt = build_optimizer(OptimConfig(lr=LR, backbone_lr_ratio=0.1), {"model": model})
    assert lr_of(opt, model.text.backbone.clip.token_embedding.weight) == pytest.approx(LR * 0.1)
    assert lr_of(opt, model.image.backbone.conv1.weight) == pytest.approx(LR * 0.1)
    for param in (model.text.backbone.prompt, model.text_head[0].weight, model.logit_scale):
        assert lr_of(opt, param) == pytest.approx(LR)


def test_schedule_scales_every_group_alike():
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP_4))
    cfg = OptimConfig(lr=LR, image_layer_decay=0.5, warmup_steps=4)
    opt = build_optimizer(cfg, {"model": model})
    sched = build_scheduler(cfg, opt, total_steps=10)
    scales = [g["lr_scale"] for g in opt.param_groups]
    for _ in range(2):
        opt.step()
        sched.step()
    for group, scale in zip(opt.param_groups, scales):
        assert group["lr"] == pytest.approx(LR * scale * 3 / 4)


def test_sgd_and_adamw():
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP))
    assert isinstance(build_optimizer(OptimConfig(name="sgd", momentum=0.8), {"model": model}), torch.optim.SGD)
    assert isinstance(build_optimizer(OptimConfig(), {"model": model}), torch.optim.AdamW)


def test_layer_decay_without_blocks_fails_clearly():
    model = model_of(TowerConfig(builder="torchvision", name="mobilenet_v3_small", image_size=32))
    with pytest.raises(ValueError, match="optim.image_layer_decay: layer-wise lr decay needs repeated blocks"):
        build_optimizer(OptimConfig(image_layer_decay=0.7), {"model": model})


def test_nothing_to_train_and_bad_ranges():
    with pytest.raises(ValueError, match="nothing to train"):
        build_optimizer(OptimConfig(), {"m": nn.Linear(2, 2).requires_grad_(False)})
    with pytest.raises(ValueError, match=r"image_layer_decay .* must be in \(0, 1\]"):
        build_optimizer(OptimConfig(image_layer_decay=1.5), {"m": nn.Linear(2, 2)})


def test_param_groups_without_scales_keep_two_groups():
    groups = param_groups({"m": nn.Linear(3, 2)}, 0.2)
    assert [(len(g["params"]), g["weight_decay"], g["lr_scale"]) for g in groups] == [(1, 0.2, 1.0), (1, 0.0, 1.0)]


@pytest.mark.parametrize("key, value, message", [
    ("image_layer_decay", 0.0, r"optim.image_layer_decay must be in \(0, 1\]"),
    ("text_layer_decay", 1.2, r"optim.text_layer_decay must be in \(0, 1\]"),
    ("backbone_lr_ratio", -0.1, "optim.backbone_lr_ratio must be >= 0"),
    ("ema_decay", 1.0, r"optim.ema_decay must be in \[0, 1\)"),
    ("wise_ft_alpha", 1.5, r"optim.wise_ft_alpha must be in \[0, 1\]"),
])
def test_check_rejects_out_of_range_options(key, value, message):
    from raykd.train.check import validate
    from raykd.config.schema import Config

    cfg = Config(model=ModelConfig(image=TowerConfig(builder="openclip", model_config=TINY_CLIP),
                                   text=TowerConfig(builder="openclip", model_config=TINY_CLIP)))
    setattr(cfg.optim, key, value)
    with pytest.raises(ValueError, match=message):
        validate(cfg)


class TinyRegression(nn.Module):
    """An embedding, a normalised MLP and a scalar: every kind of parameter the groups treat apart."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 1))
        self.logit_scale = nn.Parameter(torch.zeros(()))  # a scalar: never decayed

    def forward(self, ids):
        return self.mlp(self.embed(ids)).squeeze(-1) * self.logit_scale.exp()


@pytest.mark.parametrize("name, lr", [("lamb", 3e-2), ("lion", 3e-3), ("adabelief", 3e-2), ("nadam", 3e-2),
                                      ("radam", 3e-2), ("lars", 0.1), ("sgd", 0.05), ("lookahead_adamw", 3e-2)])
def test_timm_optimizers_train_with_raykd_groups(name, lr):
    """Each timm optimizer, given raykd's groups, fits a fixed regression batch within 30 steps."""
    torch.manual_seed(0)
    model = TinyRegression()
    ids, target = torch.arange(4), torch.tensor([-1.0, -0.3, 0.4, 1.0])
    opt = build_optimizer(OptimConfig(name=name, lr=lr, weight_decay=0.05), {"model": model})
    assert decay_of(opt, model.mlp[0].bias) == decay_of(opt, model.mlp[1].weight) == 0.0
    assert decay_of(opt, model.embed.weight) == decay_of(opt, model.logit_scale) == 0.0
    assert decay_of(opt, model.mlp[0].weight) == 0.05
    losses = []
    for _ in range(30):
        loss = (model(ids) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses


def test_timm_optimizer_keeps_the_backbone_ratio_and_layer_decay():
    """timm builds no groups of its own: lamb gets exactly raykd's per-parameter lr and weight decay."""
    model = model_of(TowerConfig(builder="openclip", model_config=TINY_CLIP_4))
    cfg = dict(lr=LR, weight_decay=0.1, image_layer_decay=0.5, backbone_lr_ratio=0.1)
    lamb = build_optimizer(OptimConfig(name="lamb", **cfg), {"model": model})
    adamw = build_optimizer(OptimConfig(name="adamw", **cfg), {"model": model})
    assert type(lamb).__name__ == "Lamb"
    for param in model.parameters():
        assert (lr_of(lamb, param), decay_of(lamb, param)) == (lr_of(adamw, param), decay_of(adamw, param))
    assert lr_of(lamb, model.image.backbone.conv1.weight) == pytest.approx(LR * 0.1 * 0.5 ** 5)
    assert lr_of(lamb, model.logit_scale) == pytest.approx(LR)


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(ValueError, match=r"optim.name: unknown optimizer 'adamx'; close matches \['adamax', .*valid "
                                         r"\(as timm spells them, each also as lookahead_<name>\): \[.*'lamb'"):
        build_optimizer(OptimConfig(name="adamx"), {"m": nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="unknown optimizer 'foo_adamw'"):  # timm alone would read it as adamw
        build_optimizer(OptimConfig(name="foo_adamw"), {"m": nn.Linear(2, 2)})

