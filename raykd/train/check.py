"""`raykd check`: validate a recipe and build its model with random weights, without training.

Everything here runs before Ray starts, so a bad recipe fails in seconds with the option named.
The rules live with what they are about: value ranges on the config dataclasses
(`raykd.config.schema`), tower options with each tower builder (`raykd.models.towers.validate_tower`),
loss hyper-parameters with the loss registry, evaluation options with the evaluation tasks.
"""
from __future__ import annotations

import copy
import difflib

from raykd.config.loading import config_to_dict
from raykd.config.schema import Config
from raykd.losses import get_loss, list_losses
from raykd.models.dual_encoder import build_dual_encoder, count_parameters
from raykd.models.towers import validate_tower
from raykd.train.checkpoint import read_init_state
from raykd.train.evaluation import task_schedule
from raykd.train.optim import build_optimizer, check_optimizer_name
from raykd.train.trackers import check_loggers


def validate(cfg: Config) -> None:
    """Config ranges, tower options and pretrained tags, the loss and its hyper-parameters, the
    evaluation options; raises ValueError naming the option. Nothing is downloaded or built."""
    cfg.check()  # already run at load; again for configs changed since
    for modality in ("image", "text"):
        validate_tower(getattr(cfg.model, modality), modality)
    check_optimizer_name(cfg.optim.name)
    check_loggers(cfg.run.loggers)  # a tracker's package missing fails here, naming the extra to install
    if cfg.loss.name not in list_losses():
        close = difflib.get_close_matches(cfg.loss.name, list_losses(), n=2)
        raise ValueError(f"loss.name: unknown loss '{cfg.loss.name}'; close matches {close}; valid: {list_losses()}")
    get_loss(cfg.loss.name, **cfg.loss.hparams)  # raises on an unknown or ill-typed hparam
    task_schedule(cfg)  # eval.<task>.options the task does not accept fail here, before Ray starts
    if cfg.train.init_from:  # a missing, incomplete or mismatched checkpoint fails here, not on every worker
        read_init_state(cfg.train.init_from, config_to_dict(cfg))


def check(cfg: Config) -> dict:
    """Validate, then build the model with random weights (and its optimiser's parameter groups);
    returns {'image'|'text': {'trainable': int, 'total': int}} counting backbone + head."""
    validate(cfg)
    random_cfg = copy.deepcopy(cfg.model)
    random_cfg.image.pretrained = random_cfg.text.pretrained = ""
    random_cfg.image.weights = random_cfg.text.weights = ""
    model = build_dual_encoder(random_cfg)
    if any(p.requires_grad for p in model.parameters()):
        build_optimizer(cfg.optim, {"model": model})  # layer-wise decay needs blocks it can find
    report = {}
    for name, modules in {"image": (model.image, model.image_head), "text": (model.text, model.text_head)}.items():
        trainable = sum(count_parameters(m)[0] for m in modules)
        total = sum(count_parameters(m)[1] for m in modules)
        report[name] = {"trainable": trainable, "total": total}
    return report
