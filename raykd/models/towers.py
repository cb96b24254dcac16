"""Tower builders: a registry of functions `TowerConfig -> Tower`, filled by decorators.

A `Tower` wraps one backbone with the contract in DESIGN.md: `encode(inputs) -> Tensor[B, D]`,
`output_dim`, and `image_spec` (image towers) or `tokenizer` (text towers). Builders never
download at import time; weights come from a local file, a local directory, a cache directory,
or the library's own hub call when a pretrained tag/name is asked for.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.data.transforms import ImageSpec
from raykd.models.local_models import resolve_model_path

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BUILDERS: dict[tuple[str, str], Callable[[TowerConfig], "Tower"]] = {}


def register_tower(builder: str, modality: str):
    """Register `fn(cfg) -> Tower` as `builder` for `modality` ('image' or 'text')."""

    def wrap(fn):
        _BUILDERS[(builder, modality)] = fn
        return fn

    return wrap


def list_builders(modality: str) -> list[str]:
    return sorted(b for b, m in _BUILDERS if m == modality)


def build_tower(cfg: TowerConfig, modality: str) -> "Tower":
    """Build the `modality` tower named by `cfg.builder` / `cfg.name`; unknown names fail clearly."""
    key = (cfg.builder, modality)
    if key not in _BUILDERS:
        valid = list_builders(modality)
        close = difflib.get_close_matches(cfg.builder, valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown {modality} tower builder '{cfg.builder}' (model.{modality}.builder){hint}; valid: {valid}")
    tower = _BUILDERS[key](cfg)
    if cfg.weights:
        load_weights_file(tower, cfg.weights, f"model.{modality}.weights")
    return tower


def load_weights_file(module: nn.Module, path: str, option: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{option}: weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or (missing and len(missing) == len(module.state_dict())):
        raise ValueError(f"{option}: {path} does not match the tower: missing {missing[:5]}, unexpected {unexpected[:5]}")


class Tower(nn.Module):
    """One backbone plus what the data pipeline needs to feed it."""

    def __init__(self, backbone: nn.Module, output_dim: int, encode_fn: Callable, *,
                 image_spec: ImageSpec | None = None, tokenizer: Callable | None = None):
        super().__init__()
        self.backbone = backbone
        self.output_dim = output_dim
        self._encode_fn = encode_fn
        self.image_spec = image_spec
        self.tokenizer = tokenizer

    def forward(self, inputs):
        return self._encode_fn(self.backbone, inputs)

    encode = forward


# ---------------------------------------------------------------- open_clip


def _create_openclip(cfg: TowerConfig, option: str) -> nn.Module:
    import open_clip

    if cfg.model_config:
        from open_clip.model import CLIP

        try:
            return CLIP(**cfg.model_config)
        except TypeError as err:
            raise ValueError(f"{option}.model_config is not a valid open_clip CLIP config: {err}") from err
    if cfg.name not in open_clip.list_models():
        close = difflib.get_close_matches(cfg.name, open_clip.list_models(), n=3)
        raise ValueError(f"unknown open_clip model '{cfg.name}' ({option}.name); close matches: {close}")
    return open_clip.create_model(cfg.name, pretrained=cfg.pretrained or None, cache_dir=cfg.cache_dir or None)


def _image_size(visual: nn.Module) -> int:
    size = getattr(visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


@register_tower("openclip", "image")
def openclip_image(cfg: TowerConfig) -> Tower:
    clip = _create_openclip(cfg, "model.image")
    visual = clip.visual
    pcfg = getattr(visual, "preprocess_cfg", None) or {}
    spec = ImageSpec(size=cfg.image_size or _image_size(visual), mean=tuple(pcfg.get("mean", OPENAI_MEAN)),
                     std=tuple(pcfg.get("std", OPENAI_STD)))
    return Tower(visual, int(visual.output_dim), lambda m, x: m(x), image_spec=spec)


class OpenCLIPText(nn.Module):
    """open_clip's text transformer without the visual half (keeps its own text projection)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        clip.visual = None
        for unused in ("logit_scale", "logit_bias"):  # the DualEncoder owns the scale; DDP needs no dead params
            if getattr(clip, unused, None) is not None:
                setattr(clip, unused, None)
        self.clip = clip

    def forward(self, tokens: dict) -> torch.Tensor:
        return self.clip.encode_text(tokens["input_ids"])


class OpenCLIPTokenizer:
    """Picklable tokenizer: builds open_clip's tokenizer lazily in whichever process uses it."""

    def __init__(self, model_name: str, context_length: int):
        self.model_name, self.context_length = model_name, context_length
        self._tok = None

    def __getstate__(self):
        return {"model_name": self.model_name, "context_length": self.context_length, "_tok": None}

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self._tok is None:
            import open_clip

            self._tok = open_clip.get_tokenizer(self.model_name, context_length=self.context_length)
        return {"input_ids": self._tok(list(texts)).numpy().astype(np.int64)}


@register_tower("openclip", "text")
def openclip_text(cfg: TowerConfig) -> Tower:
    clip = _create_openclip(cfg, "model.text")
    text = OpenCLIPText(clip)
    context = int(clip.context_length)
    name = "" if cfg.model_config else cfg.name  # '' -> open_clip's default SimpleTokenizer
    out_dim = int(clip.text_projection.shape[1]) if clip.text_projection is not None else int(clip.transformer.width)
    return Tower(text, out_dim, lambda m, x: m(x), tokenizer=OpenCLIPTokenizer(name, context))


# ---------------------------------------------------------------- torchvision


def strip_classifier(model: nn.Module) -> int:
    """Replace the model's final Linear layer (its classifier) by Identity; return its input width.

    Generic over torchvision's families: the classifier is the last `nn.Linear` registered
    (ResNet `fc`, VGG/MobileNet/EfficientNet `classifier[-1]`, ViT `heads.head`, ...).
    """
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None:
        raise ValueError(f"{type(model).__name__}: no Linear classifier to remove")
    parent = model.get_submodule(last_name.rsplit(".", 1)[0]) if "." in last_name else model
    setattr(parent, last_name.rsplit(".", 1)[-1], nn.Identity())
    return int(last.in_features)


@register_tower("torchvision", "image")
def torchvision_image(cfg: TowerConfig) -> Tower:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if cfg.name not in names:
        close = difflib.get_close_matches(cfg.name, names, n=3)
        raise ValueError(f"unknown torchvision classification model '{cfg.name}' (model.image.name); close matches: {close}")
    weights = cfg.pretrained or None  # a weight enum name such as 'DEFAULT' or 'IMAGENET1K_V2'
    kwargs = {"image_size": cfg.image_size} if cfg.image_size and cfg.name.startswith("vit_") else {}
    model = torchvision.models.get_model(cfg.name, weights=weights, **kwargs)
    out_dim = strip_classifier(model)
    spec = ImageSpec(size=cfg.image_size or 224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Tower(model, out_dim, lambda m, x: m(x), image_spec=spec)


# ---------------------------------------------------------------- HuggingFace transformers


class HFTokenizer:
    """Picklable wrapper: fixed-length padding so batches stack into arrays inside Ray Data."""

    def __init__(self, name_or_path: str, max_length: int, cache_dir: str = ""):
        self.name_or_path, self.max_length, self.cache_dir = name_or_path, max_length, cache_dir
        self._tok = None

    def __getstate__(self):
        return {**self.__dict__, "_tok": None}

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.name_or_path, cache_dir=self.cache_dir or None)
        out = self._tok(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                        return_tensors="np")
        return {"input_ids": out["input_ids"].astype(np.int64),
                "attention_mask": out["attention_mask"].astype(np.int64)}


def _hf_pool(pooler: str):
    def encode(model, tokens: dict) -> torch.Tensor:
        out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        if pooler == "cls":
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise ValueError("model.text.pooler 'cls' needs a model with a pooler; use 'cls_before_pooler'")
            return pooled
        if pooler == "cls_before_pooler":
            return out.last_hidden_state[:, 0]
        mask = tokens["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1e-9)

    return encode


@register_tower("huggingface", "text")
def huggingface_text(cfg: TowerConfig) -> Tower:
    from transformers import AutoConfig, AutoModel

    if not cfg.name:
        raise ValueError("model.text.name: a HuggingFace model id or local directory is required")
    if cfg.pooler not in ("cls", "cls_before_pooler", "mean"):
        raise ValueError(f"model.text.pooler '{cfg.pooler}' is not available for the huggingface builder yet; "
                         "use cls, cls_before_pooler or mean")
    cache = cfg.cache_dir or None
    name = resolve_model_path(cfg.name)  # an offline model package names its own directory
    if cfg.model_config:  # tiny random model: architecture from the inline config, tokenizer from `name`
        hf_cfg = AutoConfig.for_model(**cfg.model_config)
        model = AutoModel.from_config(hf_cfg)
    else:
        model = AutoModel.from_pretrained(name, cache_dir=cache)
    return Tower(model, int(model.config.hidden_size), _hf_pool(cfg.pooler),
                 tokenizer=HFTokenizer(name, cfg.max_seq_length, cfg.cache_dir))
