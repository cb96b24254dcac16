"""`raykd check`: validate a recipe and build its model with random weights, without training.

Everything here runs before Ray starts, so a bad recipe fails in seconds with the option named.
"""
from __future__ import annotations

import copy
import difflib

from raykd.config.schema import Config, TowerConfig
from raykd.losses import get_loss, list_losses
from raykd.models.dual_encoder import build_dual_encoder, count_parameters
from raykd.models.towers import list_builders


def _check_pretrained(tower: TowerConfig, modality: str) -> None:
    """Pretrained tags are checked against the library's list, but nothing is downloaded."""
    option = f"model.{modality}.pretrained"
    if not tower.pretrained:
        return
    if tower.builder == "openclip":
        import open_clip

        tags = open_clip.list_pretrained_tags_by_model(tower.name)
        if tower.pretrained not in tags and not tower.pretrained.endswith((".pt", ".bin", ".safetensors")):
            raise ValueError(f"{option}: unknown tag '{tower.pretrained}' for open_clip model {tower.name}; valid: {tags}")
    elif tower.builder == "torchvision":
        import torchvision

        enum = torchvision.models.get_model_weights(tower.name)
        names = ["DEFAULT"] + [w.name for w in enum]
        if tower.pretrained not in names:
            raise ValueError(f"{option}: unknown torchvision weights '{tower.pretrained}' for {tower.name}; valid: {names}")


def validate(cfg: Config) -> None:
    """Registry names, loss hyper-parameters and pretrained tags; raises ValueError naming the option."""
    for modality in ("image", "text"):
        tower = getattr(cfg.model, modality)
        valid = list_builders(modality)
        if tower.builder not in valid:
            close = difflib.get_close_matches(tower.builder, valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"model.{modality}.builder: unknown builder '{tower.builder}'{hint}; valid: {valid}")
        _check_pretrained(tower, modality)
    if cfg.loss.name not in list_losses():
        close = difflib.get_close_matches(cfg.loss.name, list_losses(), n=2)
        raise ValueError(f"loss.name: unknown loss '{cfg.loss.name}'; close matches {close}; valid: {list_losses()}")
    get_loss(cfg.loss.name, **cfg.loss.hparams)  # raises on an unknown or ill-typed hparam
    if cfg.train.num_workers < 1 or cfg.train.batch_size < 1:
        raise ValueError("train.num_workers and train.batch_size must be >= 1")


def check(cfg: Config) -> dict:
    """Validate, then build the model with random weights; returns parameter counts per tower."""
    validate(cfg)
    random_cfg = copy.deepcopy(cfg.model)
    random_cfg.image.pretrained = random_cfg.text.pretrained = ""
    random_cfg.image.weights = random_cfg.text.weights = ""
    model = build_dual_encoder(random_cfg)
    report = {}
    for name, modules in {"image": (model.image, model.image_head), "text": (model.text, model.text_head)}.items():
        trainable = sum(count_parameters(m)[0] for m in modules)
        total = sum(count_parameters(m)[1] for m in modules)
        report[name] = {"trainable": trainable, "total": total}
    return report
