"""timm towers: every `timm.list_models()` name, built with `num_classes=0` (pooled features).

`pretrained`: '' (random init), 'default' (timm's default tag for the name) or a tag such as
'a1_in1k' (or put the tag in the name: 'resnet18.a1_in1k'); weights come through timm's own hub
loader into `cache_dir`. `image_size` is passed as `img_size` where the model takes one (ViTs
interpolate their position embeddings). Mean/std come from the model's pretrained config.
"""
from __future__ import annotations

import os

from raykd.config.schema import TowerConfig
from raykd.models._registry import (Tower, TowerDescription, call_module, enable_grad_checkpointing, register_tower,
                                    unavailable, unknown_name_error)
from raykd.specs import ImageSpec


def timm_model_name(cfg: TowerConfig, option: str) -> str:
    """'name' or 'name.tag' to hand to timm; unknown names and tags fail with close matches."""
    import timm

    name, _, tag = cfg.name.partition(".")
    if name not in timm.list_models():
        raise unknown_name_error("timm model", name, timm.list_models(), f"{option}.name")
    if cfg.pretrained and cfg.pretrained != "default":
        tag = cfg.pretrained
    full = f"{name}.{tag}" if tag else name
    if cfg.pretrained and tag:
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{name}.*")]
        if tag not in tags:
            raise ValueError(f"{option}.pretrained: unknown timm tag '{tag}' for {name}; valid: {['default'] + tags}")
    return full


def validate_timm(cfg: TowerConfig, option: str) -> None:
    """A timm model name and a known pretrained tag; nothing is downloaded."""
    timm_model_name(cfg, option)


def describe_timm(cfg: TowerConfig, option: str = "model.image") -> TowerDescription:
    """The image spec from timm's pretrained config of the name (the data config a built model
    resolves), with `image_size` overriding the input size."""
    import timm.data  # heavy: loaded when a timm tower is asked for

    pretrained_cfg = timm.models.get_pretrained_cfg(timm_model_name(cfg, option))
    data = timm.data.resolve_data_config({}, pretrained_cfg=pretrained_cfg.to_dict() if pretrained_cfg else None)
    return TowerDescription(image_spec=_spec(cfg, data))


def _spec(cfg: TowerConfig, data: dict) -> ImageSpec:
    return ImageSpec(size=cfg.image_size or int(data["input_size"][-1]), mean=tuple(data["mean"]), std=tuple(data["std"]))


def _create(full_name: str, cfg: TowerConfig, option: str):
    import timm

    kwargs = {"num_classes": 0, "cache_dir": cfg.cache_dir or None}
    if cfg.image_size:
        kwargs["img_size"] = cfg.image_size
    try:
        try:
            return timm.create_model(full_name, pretrained=bool(cfg.pretrained), **kwargs)
        except TypeError as err:  # a model without an input-resolution argument
            if "img_size" not in str(err):
                raise
            kwargs.pop("img_size")
            return timm.create_model(full_name, pretrained=bool(cfg.pretrained), **kwargs)
    except OSError as err:
        if not cfg.pretrained:
            raise
        hub = timm.models.get_pretrained_cfg(full_name)
        repo = getattr(hub, "hf_hub_id", "") or getattr(hub, "url", "") or full_name
        cache = cfg.cache_dir or os.environ.get("HF_HUB_CACHE") or "~/.cache/huggingface/hub"
        raise unavailable(option, f"timm weights {full_name}",
                          f"the HuggingFace repo '{repo}' (huggingface-cli download {repo} --cache-dir {cache})",
                          f"the HuggingFace cache {cache} (set by {option}.cache_dir)", err) from err


@register_tower("timm", "image", validate=validate_timm, describe=describe_timm)
def timm_image(cfg: TowerConfig, option: str = "model.image") -> Tower:
    import timm.data

    model = _create(timm_model_name(cfg, option), cfg, option)
    spec = _spec(cfg, timm.data.resolve_data_config({}, model=model))
    if cfg.grad_checkpointing:
        enable_grad_checkpointing(model, option)
    out_dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return Tower(model, out_dim, call_module, image_spec=spec)
