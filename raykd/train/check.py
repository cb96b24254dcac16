"""`raykd check`: validate a recipe and build its model with random weights, without training.

Everything here runs before Ray starts, so a bad recipe fails in seconds with the option named.
"""
from __future__ import annotations

import copy
import difflib

from raykd.config.schema import Config, OptimConfig, TowerConfig
from raykd.losses import get_loss, list_losses
from raykd.models.dual_encoder import build_dual_encoder, count_parameters
from raykd.models.towers import list_builders
from raykd.train.trackers import check_loggers


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
        if tower.pretrained.split(".")[-1] not in names:
            raise ValueError(f"{option}: unknown torchvision weights '{tower.pretrained}' for {tower.name}; valid: {names}")
    elif tower.builder == "timm":
        from raykd.models.timm_towers import timm_model_name

        timm_model_name(tower, f"model.{modality}")  # unknown names / tags raise ValueError


def _check_tower_options(tower: TowerConfig, modality: str) -> None:
    """Options that only some builders take (adapters, CoOp, poolers) and the pattern lists."""
    option = f"model.{modality}"
    if tower.adapter and (tower.builder, modality) != ("huggingface", "text"):
        raise ValueError(f"{option}.adapter '{tower.adapter}' needs a HuggingFace text tower "
                         f"({option}.builder: huggingface), not the {tower.builder} {modality} tower")
    if tower.adapter_config and not tower.adapter:
        raise ValueError(f"{option}.adapter_config is set but {option}.adapter is not")
    if tower.coop_n_ctx and (tower.builder, modality) != ("openclip", "text"):
        raise ValueError(f"{option}.coop_n_ctx (CoOp) needs the openclip text tower, not the {tower.builder} {modality} tower")
    if tower.pooler in ("PromptBERT", "logits") and tower.builder != "huggingface":
        raise ValueError(f"{option}.pooler '{tower.pooler}' needs the huggingface builder, not '{tower.builder}'")
    for key in ("lock_patterns", "train_patterns"):
        patterns = getattr(tower, key)
        if not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"{option}.{key} must be a list of non-empty glob strings, got {patterns!r}")
    if tower.lock and tower.train_patterns:
        raise ValueError(f"{option}: lock: true freezes the whole tower; drop it to train only {option}.train_patterns")


def _check_optim(optim: OptimConfig) -> None:
    for key in ("image_layer_decay", "text_layer_decay"):
        if not 0.0 < getattr(optim, key) <= 1.0:
            raise ValueError(f"optim.{key} must be in (0, 1] (1: no layer-wise decay), got {getattr(optim, key)}")
    if optim.backbone_lr_ratio < 0:
        raise ValueError(f"optim.backbone_lr_ratio must be >= 0, got {optim.backbone_lr_ratio}")
    if not 0.0 <= optim.ema_decay < 1.0:
        raise ValueError(f"optim.ema_decay must be in [0, 1) (0: no EMA), got {optim.ema_decay}")
    if not 0.0 <= optim.wise_ft_alpha <= 1.0:
        raise ValueError(f"optim.wise_ft_alpha must be in [0, 1] (1: the trained weights), got {optim.wise_ft_alpha}")


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
        _check_tower_options(tower, modality)
    _check_optim(cfg.optim)
    check_loggers(cfg.run.loggers)  # a tracker's package missing fails here, naming the extra to install
    if cfg.loss.name not in list_losses():
        close = difflib.get_close_matches(cfg.loss.name, list_losses(), n=2)
        raise ValueError(f"loss.name: unknown loss '{cfg.loss.name}'; close matches {close}; valid: {list_losses()}")
    get_loss(cfg.loss.name, **cfg.loss.hparams)  # raises on an unknown or ill-typed hparam
    if cfg.train.num_workers < 1 or cfg.train.batch_size < 1:
        raise ValueError("train.num_workers and train.batch_size must be >= 1")
    from raykd.train.evaluation import task_schedule

    task_schedule(cfg)  # eval.<task>.options the task does not accept fail here, before Ray starts


def check(cfg: Config) -> dict:
    """Validate, then build the model with random weights (and its optimiser's parameter groups);
    returns {'image'|'text': {'trainable': int, 'total': int}} counting backbone + head."""
    validate(cfg)
    random_cfg = copy.deepcopy(cfg.model)
    random_cfg.image.pretrained = random_cfg.text.pretrained = ""
    random_cfg.image.weights = random_cfg.text.weights = ""
    model = build_dual_encoder(random_cfg)
    from raykd.train.optim import build_optimizer

    if any(p.requires_grad for p in model.parameters()):
        build_optimizer(cfg.optim, {"model": model})  # layer-wise decay needs blocks it can find
    report = {}
    for name, modules in {"image": (model.image, model.image_head), "text": (model.text, model.text_head)}.items():
        trainable = sum(count_parameters(m)[0] for m in modules)
        total = sum(count_parameters(m)[1] for m in modules)
        report[name] = {"trainable": trainable, "total": total}
    return report
