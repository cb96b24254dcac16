"""torchvision towers: every classification model (`torchvision.models.list_models`), classifier removed.

Nothing here knows a model family by name: the classifier is the last `nn.Linear` (or, for fully
convolutional heads such as SqueezeNet's, the last `nn.Conv2d`), its input width is `output_dim`
(`features: pre_logits`). With `features: pooled` the classifier is cut at its first Linear instead,
so an MLP classifier goes too and the tower gives the backbone's pooled output, as the original
codebase did (mobilenet_v3_large: 960-d instead of the 1280-d of Linear(960, 1280) + Hardswish);
constructor options are passed only where the model's constructor accepts them (input resolution
`image_size`/`input_size`, `aux_logits=False`); tuple outputs (auxiliary logits) keep the first.
Pretrained weights come from torchvision's weight enums (cached under `<cache_dir>/checkpoints`,
else torch hub's directory) or a local file (`weights`).
"""
from __future__ import annotations

import contextlib
import os
import re
import urllib.error
from pathlib import Path

import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models._registry import Tower, TowerDescription, offline, register_tower, unavailable, unknown_name_error
from raykd.specs import ImageSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the classifier: the last `nn.Linear` registered (ResNet `fc`, VGG/MobileNet/
    EfficientNet `classifier[-1]`, ViT `heads.head`, ...) or, in a model without any, the last `nn.Conv2d`."""
    for kind in (nn.Linear, nn.Conv2d):
        found = [(n, m) for n, m in model.named_modules() if isinstance(m, kind)]
        if found:
            return found[-1]
    raise ValueError(f"{type(model).__name__}: no Linear or Conv2d classifier to remove")


def strip_classifier(model: nn.Module) -> int:
    """Replace the model's classifier by Identity; return its input width (the feature width)."""
    name, last = find_classifier(model)
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    setattr(parent, name.rsplit(".", 1)[-1], nn.Identity())
    return int(last.in_features if isinstance(last, nn.Linear) else last.in_channels)


def cut_classifier_mlp(model: nn.Module) -> tuple[str, int]:
    """Cut the classifier container (the `nn.Sequential` holding the last Linear) at its first Linear,
    keeping what comes before it (ConvNeXt's LayerNorm + Flatten, MaxViT's pooling); returns (removed
    prefix, the pooled width). Without such a container (ResNet `fc`) it is `strip_classifier`."""
    name, last = find_classifier(model)
    parent_name = name.rsplit(".", 1)[0] if "." in name else ""
    parent = model.get_submodule(parent_name) if parent_name else model
    if not isinstance(last, nn.Linear) or not isinstance(parent, nn.Sequential):
        return name, strip_classifier(model)
    first = next(i for i, m in enumerate(parent) if isinstance(m, nn.Linear))
    width = int(parent[first].in_features)
    del parent[first:]
    return parent_name, width


def _encode(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """images [B, 3, S, S] -> [B, D]; auxiliary outputs (GoogLeNet/Inception in training) dropped."""
    out = model(images)
    return out[0] if isinstance(out, tuple) else out


def validate_torchvision(cfg: TowerConfig, option: str) -> None:
    """A classification model name, known weights, no gradient checkpointing; nothing downloaded."""
    import torchvision  # the model zoo: loaded when a torchvision tower is asked for

    names = torchvision.models.list_models(module=torchvision.models)
    if cfg.name not in names:
        raise unknown_name_error("torchvision classification model", cfg.name, names, f"{option}.name")
    if cfg.grad_checkpointing:
        raise ValueError(f"{option}.grad_checkpointing: torchvision models do not support gradient "
                         "checkpointing; the timm builder offers most of the same architectures with it")
    if cfg.pretrained:
        valid = ["DEFAULT"] + [w.name for w in torchvision.models.get_model_weights(cfg.name)]
        if cfg.pretrained.split(".")[-1] not in valid:  # accept 'ResNet18_Weights.IMAGENET1K_V1'
            raise ValueError(f"{option}.pretrained: unknown torchvision weights '{cfg.pretrained}' for {cfg.name}; "
                             f"valid: {valid}")


def _weights(cfg: TowerConfig):
    """The weights enum member named by `cfg.pretrained` (checked by `validate_torchvision`), or None."""
    import torchvision

    if not cfg.pretrained:
        return None
    enum = torchvision.models.get_model_weights(cfg.name)
    tag = cfg.pretrained.split(".")[-1]
    return enum.DEFAULT if tag == "DEFAULT" else enum[tag]


@contextlib.contextmanager
def _hub_dir(cache_dir: str):
    if not cache_dir:
        yield
        return
    previous = torch.hub.get_dir()
    torch.hub.set_dir(cache_dir)
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


def _construct(name: str, weights, kwargs: dict) -> nn.Module:
    """`get_model(name, weights, **kwargs)`, dropping each kwarg the constructor rejects."""
    import torchvision

    kwargs = dict(kwargs)
    while True:
        try:
            return torchvision.models.get_model(name, weights=weights, **kwargs)
        except TypeError as err:
            rejected = re.search(r"unexpected keyword argument '(\w+)'", str(err))
            if not rejected or rejected.group(1) not in kwargs:
                raise
            kwargs.pop(rejected.group(1))


def _resized_pretrained(name: str, weights, kwargs: dict, size: int, option: str) -> nn.Module:
    """Pretrained weights at another input resolution: ViT position embeddings are interpolated."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    fixed = {k: v for k, v in kwargs.items() if k not in ("image_size", "input_size")}
    state = _construct(name, weights, fixed).state_dict()
    model = _construct(name, None, kwargs)
    if "encoder.pos_embedding" in state:
        state = interpolate_embeddings(size, model.patch_size, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{option}.image_size: {name}'s pretrained weights fix its input resolution "
                         f"({weights.meta.get('min_size')}); drop image_size or train from scratch") from err
    return model


def _build(cfg: TowerConfig, weights, option: str) -> nn.Module:
    kwargs: dict = {"aux_logits": False}
    if cfg.image_size:
        kwargs.update(image_size=cfg.image_size, input_size=(cfg.image_size, cfg.image_size))
    if weights is None:
        return _construct(cfg.name, None, kwargs)
    directory = Path(cfg.cache_dir or torch.hub.get_dir()) / "checkpoints"
    target = directory / os.path.basename(weights.url)
    if offline() and not target.is_file():
        raise unavailable(option, f"torchvision weights {cfg.name}.{weights.name}", weights.url, str(target))
    try:
        with _hub_dir(cfg.cache_dir):
            return _construct(cfg.name, weights, kwargs)
    except ValueError as err:  # the weights fix a resolution the config overrides
        if "expected value" not in str(err):
            raise
        with _hub_dir(cfg.cache_dir):
            return _resized_pretrained(cfg.name, weights, kwargs, cfg.image_size, option)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise unavailable(option, f"torchvision weights {cfg.name}.{weights.name}", weights.url, str(target), err) from err


def _default_size(name: str) -> int:
    import torchvision

    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms
    return int(getattr(transforms, "keywords", {}).get("crop_size", 224))


def _spec(cfg: TowerConfig) -> ImageSpec:
    return ImageSpec(size=cfg.image_size or _default_size(cfg.name), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def describe_torchvision(cfg: TowerConfig, option: str = "model.image") -> TowerDescription:
    """ImageNet mean/std at the default weights' crop size (or `image_size`), from the weights' meta."""
    return TowerDescription(image_spec=_spec(cfg))


@register_tower("torchvision", "image", validate=validate_torchvision, describe=describe_torchvision,
                features=("pre_logits", "pooled"))
def torchvision_image(cfg: TowerConfig, option: str = "model.image") -> Tower:
    model = _build(cfg, _weights(cfg), option)
    if cfg.features == "pooled":
        classifier, out_dim = cut_classifier_mlp(model)
    else:
        classifier = find_classifier(model)[0]
        out_dim = strip_classifier(model)
    tower = Tower(model, out_dim, _encode, image_spec=_spec(cfg))
    tower.ignored_weight_prefixes = [f"backbone.{classifier}."]  # torchvision .pth files still hold it
    return tower
