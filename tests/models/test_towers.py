"""Every tower builder: a tiny instance runs forward and backward; bad names fail clearly."""
from __future__ import annotations

import pickle
from collections import defaultdict

import pytest
import torch
import torchvision
from torch import nn

from raykd.config.schema import ModelConfig, TowerConfig
from raykd.models.dual_encoder import build_dual_encoder
from raykd.models.towers import PretrainedUnavailableError, build_tower, list_builders, strip_classifier
from tests.conftest import TINY_CLIP
from tests.models.conftest import TINY_CLIP_4, tokens_of, tower_config

# One tiny configuration per registered (builder, modality); `{bert}`, `{hub}`, ... are fixture paths.
TINY = {
    ("openclip", "image"): dict(builder="openclip", model_config=TINY_CLIP),
    ("openclip", "text"): dict(builder="openclip", model_config=TINY_CLIP),
    ("torchvision", "image"): dict(builder="torchvision", name="resnet18", image_size=32),
    ("timm", "image"): dict(builder="timm", name="test_vit", image_size=32),
    ("huggingface", "text"): dict(builder="huggingface", name="{bert}", max_seq_length=8),
    ("sbert", "text"): dict(builder="sbert", name="{minilm}", max_seq_length=16),
    ("chineseclip", "image"): dict(builder="chineseclip", name="{chineseclip}"),
    ("chineseclip", "text"): dict(builder="chineseclip", name="{chineseclip}", max_seq_length=8),
    ("torchhub", "image"): dict(builder="torchhub", name="{hub}:tiny_convnet", image_size=32),
}
REGISTERED = [(b, m) for m in ("image", "text") for b in list_builders(m)]


def tiny_tower(key, request) -> nn.Module:
    return build_tower(tower_config(TINY[key], request), key[1])


def test_registry_lists_builders():
    assert {"openclip", "torchvision", "timm"} <= set(list_builders("image"))
    assert {"openclip", "huggingface", "sbert"} <= set(list_builders("text"))


@pytest.mark.parametrize("key", REGISTERED, ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_builder_forward_backward(key, request):
    """Contract over the registry: shape [B, output_dim], finite, gradients reach the backbone."""
    assert key in TINY, f"add a tiny config for the new builder {key} to TINY"
    tower = tiny_tower(key, request).train()
    if key[1] == "image":
        inputs = torch.randn(2, 3, tower.image_spec.size, tower.image_spec.size)
    else:
        inputs = tokens_of(tower, ["a red circle", "a blue square"])
        assert all(v.dtype == torch.int64 and v.shape[0] == 2 for v in inputs.values())
        pickle.loads(pickle.dumps(tower.tokenizer))  # Ray Data ships it to its tasks
    out = tower(inputs)
    assert out.shape == (2, tower.output_dim) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())


def _smallest_per_family() -> list[tuple[str, int]]:
    """(smallest model, test resolution) of every torchvision classification family (module)."""
    families = defaultdict(list)
    for name in torchvision.models.list_models(module=torchvision.models):
        weights = list(torchvision.models.get_model_weights(name))
        family = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
        min_size = weights[0].meta.get("min_size", (1, 1))[0]
        families[family].append((min(w.meta["num_params"] for w in weights), name, min_size))
    out = []
    for _, name, min_size in (min(v) for _, v in sorted(families.items())):
        # ViT and Swin take any size when randomly initialised; MaxViT's partitions need 224
        out.append((name, 224 if name.startswith("maxvit") else max(32, min_size if min_size < 224 else 32)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name, size", _smallest_per_family(), ids=lambda v: str(v))
def test_every_torchvision_family(name, size):
    tower = build_tower(TowerConfig(builder="torchvision", name=name, image_size=size), "image").eval()
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in tower.modules())
    with torch.no_grad():
        out = tower(torch.randn(1, 3, size, size))
    assert out.shape == (1, tower.output_dim) and tower.image_spec.size == size
    assert getattr(tower.backbone, "image_size", size) == size  # ViT's constructor took the resolution


def test_torchvision_families_cover_the_catalogue():
    families = {n for n, _ in _smallest_per_family()}
    assert len(families) >= 15
    assert {"alexnet", "resnet18", "vgg11", "squeezenet1_1", "vit_b_16", "densenet121"} <= families


@pytest.mark.parametrize("name, width", [("resnet18", 512), ("mobilenet_v3_small", 1024), ("alexnet", 4096),
                                         ("squeezenet1_1", 512)])
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


def test_torchvision_resolution_and_aux_outputs():
    googlenet = build_tower(TowerConfig(builder="torchvision", name="googlenet", image_size=48), "image").train()
    assert googlenet.backbone.aux1 is None  # aux_logits=False where the constructor accepts it
    assert googlenet(torch.randn(2, 3, 48, 48)).shape == (2, 1024) and googlenet.image_spec.size == 48
    assert build_tower(TowerConfig(builder="torchvision", name="resnet18"), "image").image_spec.size == 224


def test_torchvision_backbone_weights_file(tmp_path):
    """A torchvision-style .pth (classifier included, no 'backbone.' prefix) loads into the tower."""
    source = torchvision.models.resnet18(num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    tower = build_tower(TowerConfig(builder="torchvision", name="resnet18", weights=str(tmp_path / "resnet18.pth")), "image")
    assert torch.equal(tower.backbone.conv1.weight, source.conv1.weight)


@pytest.mark.parametrize("name", ["test_vit", "test_resnet", "test_efficientnet", "test_convnext"])
def test_timm_output_dim(name):
    tower = build_tower(TowerConfig(builder="timm", name=name, image_size=32), "image")
    assert tower.backbone.num_classes == 0
    assert tower(torch.randn(2, 3, 32, 32)).shape == (2, tower.output_dim)


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
    text = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP), "text")
    text.tokenizer(["warm up"])
    clone = pickle.loads(pickle.dumps(text.tokenizer))
    assert (clone(["a cat"])["input_ids"] == text.tokenizer(["a cat"])["input_ids"]).all()


def test_minilm_mean_pooler_matches_sentence_transformers(minilm_path):
    from sentence_transformers import SentenceTransformer

    tower = build_tower(TowerConfig(builder="huggingface", name=minilm_path, pooler="mean", max_seq_length=32), "text")
    texts = ["a dog runs on the grass", "the stock market fell"]
    ours = torch.nn.functional.normalize(tower(tokens_of(tower, texts)), dim=-1)
    ref = SentenceTransformer(minilm_path, device="cpu").encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(ours, ref, atol=1e-4)


def test_sbert_tower_matches_sentence_transformers(minilm_path):
    from sentence_transformers import SentenceTransformer

    tower = build_tower(TowerConfig(builder="sbert", name=minilm_path, max_seq_length=32), "text").eval()
    texts = ["a dog runs on the grass", "the stock market fell"]
    with torch.no_grad():
        ours = tower(tokens_of(tower, texts))
    ref = SentenceTransformer(minilm_path, device="cpu").encode(texts, convert_to_tensor=True)
    assert tower.output_dim == 384 and torch.allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("pooler", ["cls", "cls_before_pooler", "mean", "PromptBERT", "logits"])
def test_huggingface_poolers(tiny_bert_dir, pooler):
    tower = build_tower(TowerConfig(builder="huggingface", name=tiny_bert_dir, pooler=pooler, max_seq_length=16), "text")
    tok = tokens_of(tower, ["a red circle", "blue"])
    assert tok["input_ids"].shape == (2, 16) and tok["input_ids"].dtype == torch.int64
    out = tower(tok)
    assert out.shape == (2, tower.output_dim) == (2, 2 if pooler == "logits" else 16)
    if pooler == "mean":  # padding must not leak into the mean
        assert tok["attention_mask"][1].sum() == 3
        hidden = tower.backbone(**tok).last_hidden_state
        assert torch.allclose(out[1], hidden[1, :3].mean(0), atol=1e-6)
    if pooler != "cls":
        assert getattr(tower.backbone, "pooler", None) is None  # unused pooler dropped (no dead DDP params)
    out.sum().backward()


def test_promptbert_template_and_denoising(minilm_path):
    """[MASK] state of 'This sentence : "s" means [MASK] .' minus the template's own, by hand."""
    from transformers import AutoModel, AutoTokenizer

    tower = build_tower(TowerConfig(builder="huggingface", name=minilm_path, pooler="PromptBERT", max_seq_length=32),
                        "text").eval()
    tok, model = AutoTokenizer.from_pretrained(minilm_path), AutoModel.from_pretrained(minilm_path).eval()
    sentence = "a dog runs on the grass"
    with torch.no_grad():
        ours = tower(tokens_of(tower, [sentence, ""]))
        full = tok(f'This sentence : "{sentence}" means [MASK] .', return_tensors="pt")["input_ids"]
        signal = model(input_ids=full).last_hidden_state[0, full[0].tolist().index(tok.mask_token_id)]
        template = tok('This sentence : "" means [MASK] .', return_tensors="pt")["input_ids"]
        n = len(tok(sentence, add_special_tokens=False)["input_ids"])
        positions = torch.arange(template.shape[1])
        positions[5:] += n  # [CLS] this sentence : " | sentence | " means [MASK] . [SEP]
        noise = model(input_ids=template, position_ids=positions[None]).last_hidden_state[
            0, template[0].tolist().index(tok.mask_token_id)]
    assert torch.allclose(ours[0], signal - noise, atol=1e-4)
    assert ours[1].abs().max() < 1e-4  # an empty sentence is the template itself: no signal left


def test_promptbert_roberta_style(tiny_roberta_dir):
    """RoBERTa: single quotes and <mask>; its positions start after padding_idx, also in the noise term."""
    tower = build_tower(TowerConfig(builder="huggingface", name=tiny_roberta_dir, pooler="PromptBERT",
                                    max_seq_length=64), "text").eval()
    tok = tower.tokenizer.tok
    ids = tokens_of(tower, ["a red circle", ""])["input_ids"]
    text = tok.decode(ids[0], skip_special_tokens=False).replace("<pad>", "")
    assert text == "<s>This sentence : 'a red circle' means<mask> .</s>"  # <mask> strips the space before it
    with torch.no_grad():
        out = tower({"input_ids": ids, "attention_mask": (ids != tok.pad_token_id).long()})
    assert out[1].abs().max() < 1e-5 < out[0].abs().max()


def test_promptbert_template_too_long_fails(tiny_bert_dir):
    tower = build_tower(TowerConfig(builder="huggingface", name=tiny_bert_dir, pooler="PromptBERT", max_seq_length=8), "text")
    with pytest.raises(ValueError, match="max_seq_length=8 is too short for the PromptBERT template"):
        tower.tokenizer(["a red circle"])


def test_unknown_builder_and_model_names():
    with pytest.raises(ValueError, match=r"unknown image tower builder 'torchvison'.*did you mean 'torchvision'"):
        build_tower(TowerConfig(builder="torchvison", name="resnet18"), "image")
    with pytest.raises(ValueError, match="unknown torchvision classification model 'resnet19'.*resnet18"):
        build_tower(TowerConfig(builder="torchvision", name="resnet19"), "image")
    with pytest.raises(ValueError, match="unknown open_clip model 'RN5O'.*RN50"):
        build_tower(TowerConfig(builder="openclip", name="RN5O"), "image")
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet19' \(model.image.name\); close matches.*resnet18"):
        build_tower(TowerConfig(builder="timm", name="resnet19"), "image")
    with pytest.raises(ValueError, match="model.text.model_config is not a valid open_clip CLIP config"):
        build_tower(TowerConfig(builder="openclip", model_config={"embed_dim": 8, "bogus": 1}), "text")


def test_unknown_pretrained_tags():
    with pytest.raises(ValueError, match="unknown torchvision weights 'IMAGENET'.*IMAGENET1K_V1"):
        build_tower(TowerConfig(builder="torchvision", name="resnet18", pretrained="IMAGENET"), "image")
    with pytest.raises(ValueError, match="unknown timm tag 'in99k' for test_vit"):
        build_tower(TowerConfig(builder="timm", name="test_vit", pretrained="in99k"), "image")


@pytest.mark.parametrize("cfg, modality, what, where", [
    (dict(builder="torchvision", name="resnet18", pretrained="IMAGENET1K_V1"), "image",
     "https://download.pytorch.org/models/resnet18-f37072fd.pth", "{cache}/checkpoints/resnet18-f37072fd.pth"),
    (dict(builder="openclip", name="RN50", pretrained="openai"), "image",
     "'timm/resnet50_clip.openai'", "HuggingFace cache {cache}"),
    (dict(builder="timm", name="test_vit", pretrained="default"), "image",
     "'timm/test_vit.r160_in1k'", "HuggingFace cache {cache}"),
    (dict(builder="huggingface", name="some-org/not-cached-bert"), "text",
     "'some-org/not-cached-bert'", "HuggingFace cache {cache}"),
], ids=["torchvision", "openclip", "timm", "huggingface"])
def test_pretrained_not_available_offline_says_what_and_where(cfg, modality, what, where, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    field = "name" if cfg["builder"] == "huggingface" else "pretrained"
    with pytest.raises(PretrainedUnavailableError) as err:
        build_tower(TowerConfig(**cfg, cache_dir=str(tmp_path)), modality)
    message = str(err.value)
    assert message.startswith(f"model.{modality}.{field}:") and "offline" in message
    assert f"Download {what}" in message or what in message.split("Download", 1)[1]
    assert where.format(cache=tmp_path) in message and f"model.{modality}.weights" in message


def test_adapter_and_coop_need_the_right_tower():
    with pytest.raises(ValueError, match="model.text.adapter 'lora' needs a HuggingFace text tower"):
        build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, adapter="lora"), "text")
    with pytest.raises(ValueError, match="model.image.adapter 'ia3' needs a HuggingFace text tower"):
        build_tower(TowerConfig(builder="torchvision", name="resnet18", adapter="ia3"), "image")
    with pytest.raises(ValueError, match="model.image.coop_n_ctx .* needs the openclip text tower"):
        build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, coop_n_ctx=4), "image")


@pytest.mark.parametrize("tower, message", [
    (dict(builder="openclip", model_config=TINY_CLIP, adapter="lora"), "model.text.adapter 'lora' needs a HuggingFace"),
    (dict(builder="sbert", name="x", adapter_config={"r": 4}), "model.text.adapter_config is set but model.text.adapter"),
    (dict(builder="sbert", name="x", pooler="PromptBERT"), "model.text.pooler 'PromptBERT' needs the huggingface builder"),
    (dict(builder="openclip", model_config=TINY_CLIP, lock_patterns=[3]), "model.text.lock_patterns must be a list"),
])
def test_check_rejects_options_the_builder_cannot_take(tower, message):
    from raykd.train.check import validate
    from raykd.config.schema import Config

    cfg = Config(model=ModelConfig(image=TowerConfig(builder="openclip", model_config=TINY_CLIP), text=TowerConfig(**tower)))
    with pytest.raises(ValueError, match=message):
        validate(cfg)


def test_grad_checkpointing_same_gradients_where_supported():
    def grads(flag):
        torch.manual_seed(0)
        tower = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP_4, grad_checkpointing=flag), "image")
        tower(torch.ones(2, 3, 32, 32)).square().sum().backward()
        return tower.backbone.transformer.grad_checkpointing, tower.backbone.conv1.weight.grad

    (on, g_on), (off, g_off) = grads(True), grads(False)
    assert on and not off and torch.allclose(g_on, g_off, atol=1e-6)


def test_grad_checkpointing_unsupported_fails(tiny_bert_dir):
    with pytest.raises(ValueError, match="model.image.grad_checkpointing: torchvision models do not support"):
        build_tower(TowerConfig(builder="torchvision", name="resnet18", grad_checkpointing=True), "image")
    resnet_clip = {**TINY_CLIP, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16}}
    with pytest.raises(ValueError, match="model.image.grad_checkpointing: ModifiedResNet does not support"):
        build_tower(TowerConfig(builder="openclip", model_config=resnet_clip, grad_checkpointing=True), "image")
    hf = build_tower(TowerConfig(builder="huggingface", name=tiny_bert_dir, grad_checkpointing=True), "text")
    assert hf.backbone.is_gradient_checkpointing
    text = build_tower(TowerConfig(builder="openclip", model_config=TINY_CLIP, grad_checkpointing=True), "text")
    assert text.backbone.clip.transformer.grad_checkpointing


def test_compile_option_compiles_each_tower():
    cfg = ModelConfig(image=TowerConfig(builder="openclip", model_config=TINY_CLIP),
                      text=TowerConfig(builder="openclip", model_config=TINY_CLIP), embed_dim=16, compile=True)
    model = build_dual_encoder(cfg)
    assert model.image._compiled_call_impl is not None and model.text._compiled_call_impl is not None
    assert set(model.state_dict()) == set(build_dual_encoder(ModelConfig(**{**cfg.__dict__, "compile": False})).state_dict())


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
