"""Chinese-CLIP towers (Yang et al., "Chinese CLIP: Contrastive Vision-Language Pretraining in Chinese",
arXiv:2211.01335): the image and the text half of HuggingFace transformers' `ChineseCLIPModel`, each with
its own projection, from a hub id (e.g. `OFA-Sys/chinese-clip-vit-base-patch16`) or a local directory
(`name`). Like the `huggingface` builder, the model's own weights are always loaded; its logit scale is
offered to `model.init_logit_scale: pretrained`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models._registry import Tower, TowerDescription, call_module, register_tower
from raykd.models.hf_towers import HFTokenizer, hf_unavailable
from raykd.models.local_models import resolve_model_path
from raykd.models.openclip_towers import OPENAI_MEAN, OPENAI_STD
from raykd.specs import ImageSpec


def _load(cfg: TowerConfig, option: str) -> nn.Module:
    from transformers import ChineseCLIPModel  # heavy: loaded when a Chinese-CLIP tower is asked for

    path = resolve_model_path(cfg.name)
    try:
        return ChineseCLIPModel.from_pretrained(path, cache_dir=cfg.cache_dir or None)
    except OSError as err:
        if Path(path).is_dir():
            raise
        raise hf_unavailable(cfg, option, err, "Chinese-CLIP") from err


def validate_chineseclip(cfg: TowerConfig, option: str) -> None:
    """A hub id or local directory is named; nothing is loaded."""
    if not cfg.name:
        raise ValueError(f"{option}.name: a Chinese-CLIP hub id (e.g. OFA-Sys/chinese-clip-vit-base-patch16) "
                         "or local directory is required")
    if cfg.image_size:
        raise ValueError(f"{option}.image_size: a Chinese-CLIP tower keeps its model's resolution")


def _processor_config(path: str, cache_dir: str) -> str | None:
    """The model's preprocessor_config.json (local directory or hub cache), or None when it has none."""
    from transformers.utils import cached_file

    try:
        return cached_file(path, "preprocessor_config.json", cache_dir=cache_dir or None,
                           _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None


def _image_spec(cfg: TowerConfig, option: str) -> ImageSpec:
    """The model's resolution (config.json) and its image processor's mean/std (OpenAI's by default)."""
    from transformers import ChineseCLIPConfig

    path = resolve_model_path(cfg.name)
    try:
        config = ChineseCLIPConfig.from_pretrained(path, cache_dir=cfg.cache_dir or None)
    except OSError as err:
        raise hf_unavailable(cfg, option, err, "Chinese-CLIP") from err
    processor = _processor_config(path, cfg.cache_dir)
    stats = json.loads(Path(processor).read_text()) if processor else {}
    return ImageSpec(size=int(config.vision_config.image_size), mean=tuple(stats.get("image_mean", OPENAI_MEAN)),
                     std=tuple(stats.get("image_std", OPENAI_STD)))


class ChineseCLIPImage(nn.Module):
    """`ChineseCLIPModel.get_image_features`: the vision transformer's pooled output, projected."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, S, S] -> [B, projection_dim]."""
        return self.visual_projection(self.vision_model(pixel_values=images).pooler_output)


class ChineseCLIPText(nn.Module):
    """`ChineseCLIPModel.get_text_features`: the text encoder's first ([CLS]) token, projected."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.text_model, self.text_projection = model.text_model, model.text_projection

    def forward(self, tokens: dict) -> torch.Tensor:
        """tokens {'input_ids', 'attention_mask'}: long [B, L] -> [B, projection_dim]."""
        hidden = self.text_model(input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask"))[0]
        return self.text_projection(hidden[:, 0, :])


def _tower(model: nn.Module, half: nn.Module, **kwargs) -> Tower:
    tower = Tower(half, int(model.config.projection_dim), call_module, **kwargs)
    tower.source_logit_scale = float(model.logit_scale.detach().exp())
    return tower


def describe_chineseclip_image(cfg: TowerConfig, option: str = "model.image") -> TowerDescription:
    return TowerDescription(image_spec=_image_spec(cfg, option))


def describe_chineseclip_text(cfg: TowerConfig, option: str = "model.text") -> TowerDescription:
    return TowerDescription(tokenizer=HFTokenizer(resolve_model_path(cfg.name), cfg.max_seq_length, cfg.cache_dir))


@register_tower("chineseclip", "image", validate=validate_chineseclip, describe=describe_chineseclip_image,
                label="Chinese-CLIP")
def chineseclip_image(cfg: TowerConfig, option: str = "model.image") -> Tower:
    model = _load(cfg, option)
    return _tower(model, ChineseCLIPImage(model), image_spec=_image_spec(cfg, option))


@register_tower("chineseclip", "text", validate=validate_chineseclip, describe=describe_chineseclip_text,
                label="Chinese-CLIP")
def chineseclip_text(cfg: TowerConfig, option: str = "model.text") -> Tower:
    model = _load(cfg, option)
    return _tower(model, ChineseCLIPText(model), tokenizer=describe_chineseclip_text(cfg, option).tokenizer)
