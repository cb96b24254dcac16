"""open_clip towers: any `open_clip.list_models()` name (or an inline CLIP config), with CoOp
prompt tuning on the text tower.

CoOp (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022): `n_ctx` learnable
context vectors are inserted right after the start-of-text token; the tokenizer leaves room for
them (context length - n_ctx), and the pooled end-of-text position moves right by n_ctx (the
original codebase pooled at the unshifted index, i.e. the wrong token).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models._registry import (Tower, TowerDescription, call_module, enable_grad_checkpointing, offline,
                                    register_tower, unavailable, unknown_name_error)
from raykd.specs import ImageSpec

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHTS_SUFFIXES = (".pt", ".bin", ".safetensors")  # `pretrained` naming a weights file instead of a tag


def _inline_config(cfg: TowerConfig) -> dict:
    model_config = copy.deepcopy(cfg.model_config)
    if cfg.image_size:
        model_config.setdefault("vision_cfg", {})["image_size"] = cfg.image_size
    return model_config


def _pretrained_error(cfg: TowerConfig, option: str, err: Exception | None = None):
    import open_clip

    pcfg = open_clip.get_pretrained_cfg(cfg.name, cfg.pretrained) or {}
    hub = pcfg.get("hf_hub", "")
    cache = cfg.cache_dir or os.environ.get("HF_HUB_CACHE") or "~/.cache/huggingface/hub"
    if hub:
        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        source = f"'{filename}' from the HuggingFace repo '{repo}' (huggingface-cli download {repo} {filename} --cache-dir {cache})"
        return unavailable(option, f"open_clip weights {cfg.name}/{cfg.pretrained}", source,
                           f"the HuggingFace cache {cache} (set by {option}.cache_dir)", err)
    url = pcfg.get("url", "?")
    target = Path(cfg.cache_dir or "~/.cache/clip") / os.path.basename(url)
    return unavailable(option, f"open_clip weights {cfg.name}/{cfg.pretrained}", url, str(target), err)


def _cached(cfg: TowerConfig) -> bool:
    """Whether the weights for `cfg.pretrained` are already on disk (a file, the HF cache, the URL cache)."""
    import open_clip

    if Path(cfg.pretrained).is_file():
        return True
    pcfg = open_clip.get_pretrained_cfg(cfg.name, cfg.pretrained) or {}
    if pcfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(pcfg["hf_hub"])
        found = try_to_load_from_cache(repo, filename or "open_clip_pytorch_model.bin", cache_dir=cfg.cache_dir or None)
        if isinstance(found, str):
            return True
    url = pcfg.get("url", "")
    return bool(url) and (Path(cfg.cache_dir or Path.home() / ".cache/clip") / os.path.basename(url)).is_file()


def validate_openclip(cfg: TowerConfig, option: str) -> None:
    """A registered model name (unless `model_config` is inline) and a known pretrained tag or a
    weights file; nothing is downloaded."""
    import open_clip  # heavy: loaded when an open_clip tower is asked for

    if cfg.coop_n_ctx < 0:
        raise ValueError(f"{option}.coop_n_ctx must be >= 0, got {cfg.coop_n_ctx}")
    if cfg.model_config:
        if cfg.pretrained and not cfg.pretrained.endswith(WEIGHTS_SUFFIXES) and not Path(cfg.pretrained).is_file():
            raise ValueError(f"{option}.pretrained: with an inline model_config, pretrained is a weights file of the "
                             f"whole CLIP model (open_clip.load_checkpoint), not the tag '{cfg.pretrained}'")
        return
    if cfg.name not in open_clip.list_models():
        raise unknown_name_error("open_clip model", cfg.name, open_clip.list_models(), f"{option}.name")
    tag = cfg.pretrained
    if tag and not Path(tag).is_file() and not tag.endswith(WEIGHTS_SUFFIXES):  # a file may come later
        tags = open_clip.list_pretrained_tags_by_model(cfg.name)
        if tag not in tags:
            raise ValueError(f"{option}.pretrained: unknown tag '{tag}' for open_clip model {cfg.name}; valid: {tags}")


def _model_config(cfg: TowerConfig) -> dict:
    """The architecture `create_openclip` builds (image_size forced), from the config alone."""
    import open_clip  # heavy: loaded when an open_clip tower is asked for

    if cfg.model_config:
        return _inline_config(cfg)
    model_config = open_clip.get_model_config(cfg.name)
    if cfg.image_size:
        model_config["vision_cfg"]["image_size"] = cfg.image_size
    return model_config


def create_openclip(cfg: TowerConfig, option: str) -> nn.Module:
    """The full open_clip model (both halves) from an inline config or a registered name + tag
    (checked by `validate_openclip`, which `build_tower` runs first)."""
    import open_clip

    if cfg.model_config:
        from open_clip.model import CLIP

        try:
            model = CLIP(**_inline_config(cfg))
        except TypeError as err:
            raise ValueError(f"{option}.model_config is not a valid open_clip CLIP config: {err}") from err
        if cfg.pretrained:  # the whole CLIP's weights, logit scale included (tiny local test models)
            if not Path(cfg.pretrained).is_file():
                raise FileNotFoundError(f"{option}.pretrained: weights file not found: {cfg.pretrained}")
            open_clip.load_checkpoint(model, cfg.pretrained)
        return model
    tag = cfg.pretrained or None
    if tag and tag.endswith(WEIGHTS_SUFFIXES) and not Path(tag).is_file():
        raise FileNotFoundError(f"{option}.pretrained: weights file not found: {tag}")
    if tag and offline() and not _cached(cfg):
        raise _pretrained_error(cfg, option)
    kwargs = {"force_image_size": cfg.image_size} if cfg.image_size else {}
    try:
        return open_clip.create_model(cfg.name, pretrained=tag, cache_dir=cfg.cache_dir or None, **kwargs)
    except (OSError, RuntimeError) as err:
        if tag and (isinstance(err, OSError) or "download" in str(err).lower() or offline()):
            raise _pretrained_error(cfg, option, err) from err
        raise


def _image_size(visual: nn.Module) -> int:
    return _side(getattr(visual, "image_size", 224))


def _side(size) -> int:
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def _logit_scale(clip: nn.Module) -> float | None:
    """exp(clip.logit_scale): OpenAI's pretrained RN50 keeps 100, a fresh model 1/0.07 (None: no scale)."""
    scale = getattr(clip, "logit_scale", None)
    return float(scale.detach().exp()) if isinstance(scale, torch.Tensor) else None


def describe_openclip_image(cfg: TowerConfig, option: str = "model.image") -> TowerDescription:
    """The image spec from the model config and the pretrained tag's preprocessing config, as
    `open_clip.create_model` sets it on the built model (inline configs: OpenAI's mean/std)."""
    import open_clip  # heavy: loaded when an open_clip tower is asked for

    size = cfg.image_size or _side(_model_config(cfg).get("vision_cfg", {}).get("image_size", 224))
    pcfg = {}
    if not cfg.model_config and cfg.pretrained:
        pcfg = open_clip.get_pretrained_cfg(cfg.name, cfg.pretrained) or {}
    mean, std = pcfg.get("mean") or OPENAI_MEAN, pcfg.get("std") or OPENAI_STD
    return TowerDescription(image_spec=ImageSpec(size=size, mean=tuple(mean), std=tuple(std)))


@register_tower("openclip", "image", validate=validate_openclip, describe=describe_openclip_image)
def openclip_image(cfg: TowerConfig, option: str = "model.image") -> Tower:
    clip = create_openclip(cfg, option)
    visual = clip.visual
    pcfg = getattr(visual, "preprocess_cfg", None) or {}
    spec = ImageSpec(size=cfg.image_size or _image_size(visual), mean=tuple(pcfg.get("mean", OPENAI_MEAN)),
                     std=tuple(pcfg.get("std", OPENAI_STD)))
    if cfg.grad_checkpointing:
        enable_grad_checkpointing(visual, option)
    tower = Tower(visual, int(visual.output_dim), call_module, image_spec=spec)
    tower.source_logit_scale = _logit_scale(clip)
    return tower


class OpenCLIPText(nn.Module):
    """open_clip's text transformer without the visual half (keeps its own text projection).

    With `n_ctx > 0` (CoOp), `prompt` [n_ctx, width] is inserted after the start token of every
    sequence; input_ids then have context_length - n_ctx tokens.
    """

    def __init__(self, clip: nn.Module, n_ctx: int = 0):
        super().__init__()
        clip.visual = None
        for unused in ("logit_scale", "logit_bias"):  # the DualEncoder owns the scale; DDP needs no dead params
            if getattr(clip, unused, None) is not None:
                setattr(clip, unused, None)
        self.clip = clip
        self.n_ctx = n_ctx
        self.prompt = None
        if n_ctx:
            from open_clip.model import CLIP

            if not isinstance(clip, CLIP) or clip.text_pool_type not in ("argmax", "eos", "first", "last"):
                raise ValueError(f"CoOp needs open_clip's built-in text transformer, not {type(clip).__name__}")
            if n_ctx >= clip.context_length - 1:
                raise ValueError(f"coop_n_ctx={n_ctx} leaves no room in the context of {clip.context_length} tokens")
            self.prompt = nn.Parameter(torch.empty(n_ctx, clip.transformer.width))
            nn.init.normal_(self.prompt, std=0.02)

    def forward(self, tokens: dict) -> torch.Tensor:
        """tokens['input_ids']: long [B, L] -> text features [B, D]."""
        if self.prompt is None:
            return self.clip.encode_text(tokens["input_ids"])
        return self._encode_with_context(tokens["input_ids"])

    def pool_index(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, L - n_ctx] -> long [B]: the pooled position in the sequence after insertion."""
        pool = self.clip.text_pool_type
        if pool == "first":
            return torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)
        if pool == "last":
            return torch.full((ids.shape[0],), ids.shape[1] + self.n_ctx - 1, dtype=torch.long, device=ids.device)
        idx = ids.argmax(dim=-1) if pool == "argmax" else (ids == self.clip.text_eos_id).int().argmax(dim=-1)
        return idx + self.n_ctx  # every token after the start token moved right by n_ctx

    def _encode_with_context(self, ids: torch.Tensor) -> torch.Tensor:
        clip = self.clip
        cast = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(ids).to(cast)  # [B, L - n_ctx, W]
        ctx = self.prompt.to(cast).unsqueeze(0).expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :1], ctx, x[:, 1:]], dim=1)  # [B, L, W]
        length = x.shape[1]
        x = x + clip.positional_embedding[:length].to(cast)
        mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
        x = clip.ln_final(clip.transformer(x, attn_mask=mask))
        x = x[torch.arange(x.shape[0], device=x.device), self.pool_index(ids)]
        if clip.text_projection is None:
            return x
        return clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection


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


def _text_width(clip: nn.Module) -> int:
    projection = getattr(clip, "text_projection", None)
    if isinstance(projection, nn.Linear):
        return int(projection.out_features)
    if projection is not None:
        return int(projection.shape[1])
    text = getattr(clip, "text", None)  # CustomTextCLIP
    return int(getattr(text, "output_dim", None) or clip.transformer.width)


def _context_length(cfg: TowerConfig) -> int:
    """The text tower's context length from the model config: open_clip's own transformer takes
    `text_cfg.context_length` (77 unless set); a HuggingFace text encoder its model's positions."""
    text_cfg = _model_config(cfg).get("text_cfg", {})
    if text_cfg.get("hf_model_name"):
        from transformers import AutoConfig  # heavy: only for open_clip models with a HuggingFace text encoder

        return int(getattr(AutoConfig.from_pretrained(text_cfg["hf_model_name"]), "max_position_embeddings", 0))
    return int(text_cfg.get("context_length", 77))


def describe_openclip_text(cfg: TowerConfig, option: str = "model.text") -> TowerDescription:
    """The tokenizer `openclip_text` gives its tower, from the model config alone."""
    name = "" if cfg.model_config else cfg.name  # '' -> open_clip's default SimpleTokenizer
    return TowerDescription(tokenizer=OpenCLIPTokenizer(name, _context_length(cfg) - cfg.coop_n_ctx))


@register_tower("openclip", "text", validate=validate_openclip, describe=describe_openclip_text, coop=True)
def openclip_text(cfg: TowerConfig, option: str = "model.text") -> Tower:
    clip = create_openclip(cfg, option)
    logit_scale = _logit_scale(clip)  # before OpenCLIPText drops it: the DualEncoder owns the scale
    try:
        text = OpenCLIPText(clip, cfg.coop_n_ctx)
    except ValueError as err:
        raise ValueError(f"{option}.coop_n_ctx: {err}") from err
    context = int(clip.context_length) - cfg.coop_n_ctx
    name = "" if cfg.model_config else cfg.name  # '' -> open_clip's default SimpleTokenizer
    if cfg.grad_checkpointing:
        enable_grad_checkpointing(text, option)
    tower = Tower(text, _text_width(clip), call_module, tokenizer=OpenCLIPTokenizer(name, context))
    tower.added_params = ["backbone.prompt"] if cfg.coop_n_ctx else []
    tower.source_logit_scale = logit_scale
    return tower
