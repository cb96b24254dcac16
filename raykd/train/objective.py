"""What the optimiser minimises: the dual encoder and its losses as one module (`Objective`, so DDP syncs
the losses' own parameters too), the configured loss (`build_loss`), and which parameters the loss leaves
without gradients (`freeze_unused`)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from raykd.config.schema import Config
from raykd.losses import get_loss, loss_hparams
from raykd.models.dual_encoder import DualEncoder


class Objective(nn.Module):
    """Model + losses as one module, so DDP syncs the losses' own parameters too.

    total = w_align * loss(teacher, student) + w_simcse * SimCSE(text, text'), where SimCSE is
    InfoNCE between two dropout views of the same captions (Gao et al. 2021, tau 0.05).
    """

    def __init__(self, model: DualEncoder, loss: nn.Module, teacher: str, w_align: float = 1.0,
                 w_simcse: float = 0.0, simcse_temperature: float = 0.05, feature_caches: Optional[dict] = None):
        super().__init__()
        self.model, self.loss, self.teacher = model, loss, teacher
        # {'image'|'text': CachedTowerFeatures}: locked towers whose features are looked up, not computed
        # (raykd.train.feature_cache); a plain attribute: not parameters, not checkpointed
        self.feature_caches = dict(feature_caches or {})
        self.w_align, self.w_simcse = w_align, w_simcse
        self.simcse = get_loss("InfoNCE") if w_simcse > 0 else None
        # a buffer on the model's device: a tensor made from a float each step is a host-to-device copy
        device = next(model.parameters()).device
        self.register_buffer("simcse_scale", torch.tensor(1.0 / simcse_temperature, device=device), persistent=False)

    def forward(self, images: torch.Tensor, tokens: dict, labels: Optional[torch.Tensor]):
        """Returns (scalar loss, detached teacher features [B, D] or None)."""
        total, teacher_feats = 0.0, None
        cached_text = self._cached("text", tokens)
        text_feats = self.model.encode_text(tokens, normalize=False, tower_features=cached_text)
        if self.w_align > 0:
            image_feats = self.model.encode_image(images, normalize=False, tower_features=self._cached("image", images))
            teacher, student = (text_feats, image_feats) if self.teacher == "text" else (image_feats, text_feats)
            total = self.w_align * self.loss(teacher, student, logit_scale=self.model.scale(), labels=labels)
            teacher_feats = teacher.detach()
        if self.simcse is not None:
            # a different dropout mask (a cached tower is locked: in eval mode, no dropout, the same features)
            second_view = self.model.encode_text(tokens, normalize=False, tower_features=cached_text)
            total = total + self.w_simcse * self.simcse(text_feats, second_view, logit_scale=self.simcse_scale)
        return total, teacher_feats

    def _cached(self, tower: str, inputs) -> Optional[torch.Tensor]:
        cache = self.feature_caches.get(tower)
        return cache(inputs) if cache is not None else None


def build_loss(cfg: Config) -> nn.Module:
    """The configured loss; prototype losses get their layer sized to the joint dimension."""
    hparams = dict(cfg.loss.hparams)
    if "dim" in loss_hparams(cfg.loss.name) and hparams.get("dim") is None:
        hparams["dim"] = cfg.model.embed_dim
        print(f"[raykd] loss {cfg.loss.name}: prototype layer input dim set to model.embed_dim={cfg.model.embed_dim}")
    return get_loss(cfg.loss.name, **hparams)


def freeze_unused(model: DualEncoder, loss: nn.Module, teacher: str, trains_text: bool = False) -> None:
    """Parameters the loss never sends gradients to are frozen (DDP rejects unused parameters at the second
    step). A uni-directional loss detaches its teacher, so the teacher's tower and head get no gradient,
    unless another term trains them (`trains_text`: SimCSE on the text tower)."""
    if not loss.needs_logit_scale:
        model.logit_scale.requires_grad_(False)
    if trains_text and teacher == "text":
        return
    if not loss.uses_teacher or loss.uni_directional:  # the teacher side is ignored, or detached inside the loss
        modules = {"tower": getattr(model, teacher), "head": getattr(model, f"{teacher}_head")}
        trainable = [part for part, module in modules.items() if any(p.requires_grad for p in module.parameters())]
        if trainable and loss.uni_directional:
            print(f"[raykd] {type(loss).__name__} is uni-directional: the {teacher} {' and '.join(trainable)} get no "
                  f"gradient and are frozen (lock model.{teacher} to say so; set model.{teacher}.head."
                  "identity_if_possible for no projection)")
        for module in modules.values():
            module.requires_grad_(False)
