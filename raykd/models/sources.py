"""Where a model to evaluate comes from: a raykd checkpoint, a recipe, or a model spec.

- **checkpoint**: a checkpoint or run directory (`raykd.models.checkpoint.load_model`).
- **recipe** (+ `--set` overrides): the model its `model` section builds, no training: pretrained where the
  recipe asks for pretrained weights, random elsewhere (:meth:`ModelSource.random_parts` says where).
- **spec** `BUILDER:NAME[:PRETRAINED]`: a tower builder of `raykd.models.towers` without a recipe, e.g.
  `openclip:ViT-B-32:openai` (a builder with both towers: a two-tower model), `sbert:PATH` or
  `huggingface:NAME` (text builders: a text-only model), `torchvision:resnet50:DEFAULT` (image-only). The
  towers keep their own output (identity heads), as the library's model would encode.

:class:`ModelSource` is one picklable value for the three, called to build the model, so `raykd eval` and
`raykd eval elevater` load models the same way, in this process or on each Ray actor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from raykd.config.loading import load_config
from raykd.config.schema import Config, HeadConfig, TowerConfig
from raykd.models.checkpoint import checkpoint_info, checkpoint_model, find_checkpoint
from raykd.models.dual_encoder import DualEncoder, build_dual_encoder
from raykd.models.heads import build_head
from raykd.models.towers import Tower, build_tower, list_builders

MODALITIES = ("image", "text")
ARTICLE = {"image": "an image", "text": "a text"}
SPEC_HELP = ("BUILDER:NAME[:PRETRAINED], e.g. openclip:ViT-B-32:openai (two towers), sbert:PATH (text only), "
             "torchvision:resnet50:DEFAULT (image only)")
# Builders whose `name` is itself a trained model (a hub id or a directory), unless an inline model_config
# asks for a random one: their towers are pretrained without a `pretrained` tag.
NAMED_WEIGHTS = ("huggingface", "sbert")


class MissingTowerError(ValueError):
    """A one-tower model asked to encode the modality it has no tower for."""


class OneTowerEncoder(nn.Module):
    """A model with one tower and its head (a sentence encoder, an image backbone), with the DualEncoder's
    attributes for that tower; encoding the other modality raises :class:`MissingTowerError` naming the model."""

    def __init__(self, tower: Tower, head: nn.Module, modality: str, label: str):
        super().__init__()
        self.modality, self.label = modality, label
        setattr(self, modality, tower)
        setattr(self, f"{modality}_head", head)

    def _tower(self, modality: str) -> tuple[nn.Module, nn.Module]:
        if modality != self.modality:
            raise MissingTowerError(f"{self.label} is {ARTICLE[self.modality]}-only model: it has no {modality} tower")
        return getattr(self, modality), getattr(self, f"{modality}_head")

    @property
    def image_spec(self):
        return self._tower("image")[0].image_spec

    @property
    def text_tokenizer(self):
        return self._tower("text")[0].tokenizer

    def encode_image(self, images, *, project: bool = True, normalize: bool = True):
        return _encode(*self._tower("image"), images, project, normalize)

    def encode_text(self, tokens, *, project: bool = True, normalize: bool = True):
        return _encode(*self._tower("text"), tokens, project, normalize)


def _encode(tower: nn.Module, head: nn.Module, inputs, project: bool, normalize: bool):
    feats = tower(inputs)
    feats = head(feats) if project else feats
    return nn.functional.normalize(feats, dim=-1) if normalize else feats


def parse_spec(spec: str) -> dict[str, TowerConfig]:
    """`BUILDER:NAME[:PRETRAINED]` -> `{modality: TowerConfig}` for each modality the builder has a tower for.
    Raises ValueError naming `--model` for a malformed spec or a builder the registry does not know."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not all(parts[:2]):
        raise ValueError(f"--model {spec!r}: expected {SPEC_HELP}")
    builder, name, pretrained = parts[0], parts[1], (parts[2] if len(parts) == 3 else "")
    # sbert: the model's own max_seq_length, as SentenceTransformer(name).encode truncates
    length = {"max_seq_length": 0} if builder == "sbert" else {}
    towers = {m: TowerConfig(builder=builder, name=name, pretrained=pretrained,
                             head=HeadConfig(n_layers=0, identity_if_possible=True), **length)
              for m in MODALITIES if builder in list_builders(m)}
    if not towers:
        known = sorted(set(list_builders("image")) | set(list_builders("text")))
        raise ValueError(f"--model {spec!r}: unknown tower builder {builder!r}; builders: {known}")
    return towers


def build_from_spec(spec: str) -> nn.Module:
    """The model of a spec: a DualEncoder (both towers, identity heads: their widths must agree) or a
    OneTowerEncoder. Raises ValueError / FileNotFoundError from the builders (unknown names, weights)."""
    configs = parse_spec(spec)
    towers = {m: build_tower(cfg, m) for m, cfg in configs.items()}
    if len(towers) == 1:
        (modality, tower), = towers.items()
        return OneTowerEncoder(tower, nn.Identity(), modality, spec).eval()
    widths = {m: t.output_dim for m, t in towers.items()}
    if len(set(widths.values())) != 1:
        raise ValueError(f"--model {spec!r}: the towers' widths differ ({widths}): no common space without "
                         "projection heads; write a recipe with model.embed_dim and heads")
    # the logit scale of the model the towers were cut from (OpenAI's CLIP: 100), as the library's model scores
    scale = next((t.source_logit_scale for t in towers.values() if t.source_logit_scale is not None), 1 / 0.07)
    return DualEncoder(towers["image"], towers["text"], nn.Identity(), nn.Identity(), init_logit_scale=scale).eval()


@dataclass(frozen=True)
class ModelSource:
    """Exactly one of `checkpoint` (with `weights`), `recipe` (with `overrides`) or `spec`. Calling it builds the
    model (in eval mode); it pickles small, so a Ray actor builds its own copy."""

    checkpoint: str = ""
    weights: str = "auto"
    recipe: str = ""
    overrides: tuple = ()
    spec: str = ""

    def __post_init__(self):
        given = [k for k in ("checkpoint", "recipe", "spec") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"a model source needs exactly one of checkpoint, recipe, spec; got {given or 'none'}")
        if self.overrides and not self.recipe:
            raise ValueError("--set applies to --recipe only")

    @property
    def label(self) -> str:
        """What the model is, for results files and progress lines: the spec, `recipe:NAME [--set ...]`, or the
        checkpoint directory."""
        if self.spec:
            return self.spec
        if self.recipe:
            return " ".join([f"recipe:{self.recipe}", *(f"--set {o}" for o in self.overrides)])
        return str(self.checkpoint)

    @property
    def slug(self) -> str:
        """The label as a folder name: `recipe:recipes/quickstart.yaml` -> `recipe-quickstart`."""
        text = f"recipe-{Path(self.recipe).stem}" if self.recipe else (self.spec or Path(self.checkpoint).name)
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The towers the model has (known without building it)."""
        return tuple(parse_spec(self.spec)) if self.spec else MODALITIES

    def config(self) -> Config | None:
        """The recipe's (or checkpoint's) config; None for a spec. Raises ConfigError for a bad recipe."""
        if self.recipe:
            return load_config(self.recipe, list(self.overrides))
        if self.checkpoint:
            return checkpoint_info(find_checkpoint(self.checkpoint))[2]
        return None

    def random_parts(self) -> list[str]:
        """The parts of the model that start from random weights (empty for a checkpoint: its weights are
        trained): towers with no pretrained tag, weights file or pretrained named model, and a recipe's
        projection heads other than the identity."""
        if self.checkpoint:
            return []
        if self.spec:
            return [f"{m} tower" for m, cfg in parse_spec(self.spec).items() if not _pretrained(cfg)]
        model = self.config().model
        parts = []
        for m in MODALITIES:
            tower = getattr(model, m)
            if not _pretrained(tower):
                parts.append(f"model.{m} ({tower.builder} {tower.name or 'inline model_config'})")
            if not (tower.head.n_layers == 0 and tower.head.identity_if_possible):
                parts.append(f"model.{m}.head (a projection the recipe trains)")
        return parts

    def warning(self) -> str:
        """A warning line when part of the model has random weights, else ''."""
        parts = self.random_parts()
        if not parts:
            return ""
        return f"WARNING: {self.label}: random weights in {', '.join(parts)}: these numbers measure an untrained model"

    def __call__(self) -> nn.Module:
        if self.checkpoint:
            return checkpoint_model(str(self.checkpoint), self.weights)
        if self.spec:
            return build_from_spec(self.spec)
        return build_dual_encoder(self.config().model).eval()


def source_from_args(args) -> ModelSource:
    """The source named by parsed `raykd eval` / `raykd eval elevater` arguments: `--checkpoint` or `--run-dir`
    (with `--weights`), `--recipe` (with `--set`) or `--model`."""
    checkpoint = getattr(args, "run_dir", None) or getattr(args, "checkpoint", None) or ""
    recipe = getattr(args, "recipe", None) or ""
    if recipe and Path(recipe).is_file():  # a file, not a packaged recipe's name: Ray actors may run elsewhere
        recipe = str(Path(recipe).resolve())
    return ModelSource(checkpoint=str(checkpoint), weights=getattr(args, "weights", "auto"),
                       recipe=recipe, overrides=tuple(getattr(args, "overrides", ())),
                       spec=getattr(args, "model", None) or "")


def _pretrained(cfg: TowerConfig) -> bool:
    return bool(cfg.pretrained or cfg.weights or (cfg.builder in NAMED_WEIGHTS and cfg.name and not cfg.model_config))
