"""DualEncoder: an image tower and a text tower, each with a projection head, and a logit scale.

Locking is applied when a tower is built (`raykd.models.locking`: whole tower or parameter-name
patterns) and enforced here in one place: the submodules locking froze stay in eval mode across
`train()` calls (BatchNorm statistics frozen), and a tower without any trainable parameter runs
under `torch.no_grad()`. The projection head on top of a locked backbone still trains; make it
Identity (`head.identity_if_possible`) for a fully frozen teacher.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from raykd.config.schema import ModelConfig
from raykd.models.heads import build_head
from raykd.models.locking import apply_locking
from raykd.models.towers import Tower, build_tower


class DualEncoder(nn.Module):
    """Image tower + head, text tower + head, and a learnable logit scale (CLIP, Radford et al. 2021).

    `lock_image` / `lock_text` freeze a whole tower here (configs lock through `build_tower`);
    `locked[name]` is True while a tower has no trainable parameter (it then runs under no_grad)."""

    def __init__(self, image: Tower, text: Tower, image_head: nn.Module, text_head: nn.Module, *,
                 init_logit_scale: float = 1 / 0.07, max_logit_scale: float = 100.0,
                 learn_logit_scale: bool = True, lock_image: bool = False, lock_text: bool = False):
        super().__init__()
        self.image, self.text = image, text
        self.image_head, self.text_head = image_head, text_head
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)), requires_grad=learn_logit_scale)
        self.max_logit_scale = max_logit_scale
        self.clamp_logit_scale_()
        for tower, lock in ((image, lock_image), (text, lock_text)):
            if lock:
                apply_locking(tower, lock=True)
        self.train(self.training)

    # ------------------------------------------------------------ pipeline-facing attributes
    @property
    def image_spec(self):
        return self.image.image_spec

    @property
    def text_tokenizer(self):
        return self.text.tokenizer

    # ------------------------------------------------------------ modes and locking
    @property
    def locked(self) -> dict[str, bool]:
        """{'image': bool, 'text': bool}: True when the tower has no trainable parameter."""
        return {name: not any(p.requires_grad for p in getattr(self, name).parameters()) for name in ("image", "text")}

    def train(self, mode: bool = True):
        super().train(mode)
        for name, locked in self.locked.items():
            tower = getattr(self, name)
            if locked:
                tower.eval()
            for sub in getattr(tower, "frozen_modules", ()):
                tower.get_submodule(sub).eval()
        return self

    def _context(self, name: str):
        return torch.no_grad() if self.locked[name] else contextlib.nullcontext()

    # ------------------------------------------------------------ encoding
    def encode_image(self, images: torch.Tensor, *, project: bool = True, normalize: bool = True,
                     tower_features: torch.Tensor | None = None) -> torch.Tensor:
        """images: float [B, 3, S, S] -> [B, embed_dim] (or the backbone width when project=False).
        `tower_features`: the tower's output for `images`, precomputed (a feature cache): the tower does not run."""
        feats = tower_features
        if feats is None:
            with self._context("image"):
                feats = self.image(images)
        if project:
            feats = self.image_head(feats)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(self, tokens: dict, *, project: bool = True, normalize: bool = True,
                    tower_features: torch.Tensor | None = None) -> torch.Tensor:
        """tokens: {'input_ids': long [B, L], ...} -> [B, embed_dim] (or the backbone width).
        `tower_features`: as in `encode_image`."""
        feats = tower_features
        if feats is None:
            with self._context("text"):
                feats = self.text(tokens)
        if project:
            feats = self.text_head(feats)
        return F.normalize(feats, dim=-1) if normalize else feats

    def scale(self) -> torch.Tensor:
        """The exponentiated logit scale (kept at most `max_logit_scale` by `clamp_logit_scale_`)."""
        return self.logit_scale.exp()

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Clamp the parameter to [0, ln max_logit_scale] after each optimiser step, as open_clip's training
        loop does: a clamp inside `scale()` would zero its gradient for good once it passed the bound."""
        self.logit_scale.clamp_(0, math.log(self.max_logit_scale))

    def forward(self, images: torch.Tensor, tokens: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised projected features of both towers (losses normalise as their paper does)."""
        return self.encode_image(images, normalize=False), self.encode_text(tokens, normalize=False)


def initial_logit_scale(cfg: ModelConfig, image: Tower, text: Tower) -> float:
    """`cfg.init_logit_scale`, or with 'pretrained' the scale of the model a tower was cut from (the text
    tower's first, as the original codebase took it; OpenAI's RN50: 100). Raises ValueError when neither has one."""
    if cfg.init_logit_scale != "pretrained":
        return float(cfg.init_logit_scale)
    for tower in (text, image):
        if tower.source_logit_scale is not None:
            return tower.source_logit_scale
    raise ValueError(f"model.init_logit_scale: 'pretrained' needs a tower cut from a model with a logit scale "
                     f"(builder openclip or chineseclip); model.text.builder is '{cfg.text.builder}' and "
                     f"model.image.builder '{cfg.image.builder}': give a number instead")


def build_dual_encoder(cfg: ModelConfig) -> DualEncoder:
    """Towers (locking applied by `build_tower`), heads and logit scale; `cfg.compile` compiles the towers."""
    image = build_tower(cfg.image, "image")
    text = build_tower(cfg.text, "text")
    model = DualEncoder(
        image, text,
        build_head(cfg.image.head, image.output_dim, cfg.embed_dim, "model.image.head"),
        build_head(cfg.text.head, text.output_dim, cfg.embed_dim, "model.text.head"),
        init_logit_scale=initial_logit_scale(cfg, image, text), max_logit_scale=cfg.max_logit_scale,
        learn_logit_scale=cfg.learn_logit_scale,
    )
    if cfg.compile:
        image.compile()
        text.compile()
    return model


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
