"""The tower registry and factory: `register_tower`, `validate_tower`, `describe_tower`, `build_tower`,
the `Tower` wrapper, and the helpers every builder shares (close-match errors, offline-weights errors,
local weights files).

Each other file in `raykd/models/` named `*_towers.py` is one family of builders; importing
`raykd.models.towers` imports them all, which fills the registry. A builder registers, beside its
build function, what it can take (adapters, CoOp, poolers), a `validate` function (options it does
not take, unknown names and pretrained tags: nothing downloaded or built) and a `describe` function
(its image spec or tokenizer without building the model). `build_tower` and `raykd check` run the
same `validate_tower`.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models.locking import apply_locking
from raykd.specs import ImageSpec

# The `pooler` values every builder accepts: builders with their own pooling ignore them.
PLAIN_POOLERS = ("cls", "cls_before_pooler", "mean")


@dataclass(frozen=True)
class TowerDescription:
    """What the data pipeline needs from a tower, known without building it: the image tower's
    `image_spec` or the text tower's (picklable) `tokenizer`, equal to the built `Tower`'s."""

    image_spec: Optional[ImageSpec] = None
    tokenizer: Optional[Callable] = None


@dataclass(frozen=True)
class TowerBuilder:
    """One registry entry. `build(cfg, option) -> Tower`; `validate(cfg, option)` raises ValueError
    for options the builder does not take and unknown names/tags, without downloading or building;
    `describe(cfg, option) -> TowerDescription` without building (None: build and look).
    Capabilities the generic rules read: `adapters` (takes `adapter`), `coop` (takes `coop_n_ctx`),
    `poolers` (the `pooler` values it takes), `features` (the `features` values it takes); `label` names
    the builder in messages."""

    build: Callable[[TowerConfig, str], "Tower"]
    validate: Optional[Callable[[TowerConfig, str], None]] = None
    describe: Optional[Callable[[TowerConfig, str], TowerDescription]] = None
    label: str = ""
    adapters: bool = False
    coop: bool = False
    poolers: tuple = PLAIN_POOLERS
    features: tuple = ("pre_logits",)


_BUILDERS: dict[tuple[str, str], TowerBuilder] = {}


class PretrainedUnavailableError(FileNotFoundError):
    """Pretrained weights that are neither cached nor downloadable (e.g. on an offline machine)."""


def register_tower(builder: str, modality: str, *, validate: Optional[Callable] = None,
                   describe: Optional[Callable] = None, label: str = "", adapters: bool = False, coop: bool = False,
                   poolers: tuple = PLAIN_POOLERS, features: tuple = ("pre_logits",)):
    """Register `fn(cfg, option) -> Tower` as `builder` for `modality` ('image' or 'text'), with the
    builder's `validate` / `describe` functions and capabilities (see `TowerBuilder`).

    `option` is the config prefix (`model.image` / `model.text`) to name in error messages."""

    def wrap(fn):
        _BUILDERS[(builder, modality)] = TowerBuilder(fn, validate, describe, label or builder, adapters, coop,
                                                      tuple(poolers), tuple(features))
        return fn

    return wrap


def list_builders(modality: str) -> list[str]:
    return sorted(b for b, m in _BUILDERS if m == modality)


def unknown_name_error(kind: str, name: str, valid: list[str], option: str) -> ValueError:
    """ValueError naming `option`, with up to 5 close matches among `valid`."""
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
    return ValueError(f"unknown {kind} '{name}' ({option}); close matches: {close}")


def offline(env=os.environ) -> bool:
    """True when the HuggingFace / raykd offline switches are set: skip network attempts."""
    return any(env.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "RAYKD_OFFLINE"))


def unavailable(option: str, what: str, source: str, destination: str, err: Exception | None = None,
                field: str = "pretrained") -> PretrainedUnavailableError:
    """A PretrainedUnavailableError naming `option.field`, saying what to download and where to put it."""
    cause = f" ({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})" if err else ""
    return PretrainedUnavailableError(
        f"{option}.{field}: {what} could not be loaded (offline, and not in the local cache){cause}. Download {source} and put it at "
        f"{destination} (on a networked machine the library fetches it there itself), or set "
        f"{option}.weights to a local weights file.")


def _builder_hint(builder: str, modality: str) -> str:
    valid = list_builders(modality)
    close = difflib.get_close_matches(builder, valid, n=1)
    return (f"; did you mean '{close[0]}'?" if close else "") + f"; valid: {valid}"


def _entry(cfg: TowerConfig, modality: str) -> TowerBuilder:
    """The registry entry for `cfg.builder`; ValueError with a close match when there is none."""
    if (cfg.builder, modality) not in _BUILDERS:
        raise ValueError(f"model.{modality}.builder: unknown {modality} tower builder '{cfg.builder}'"
                         f"{_builder_hint(cfg.builder, modality)}")
    return _BUILDERS[(cfg.builder, modality)]


def _takers(capability: Callable[[TowerBuilder], bool]) -> list[tuple[str, str, str]]:
    """(builder, modality, label) of every registered builder with `capability`."""
    return sorted((b, m, e.label) for (b, m), e in _BUILDERS.items() if capability(e))


def _check_options(cfg: TowerConfig, modality: str, entry: TowerBuilder, option: str) -> None:
    """The rules every builder shares: options only some builders take, and the pattern lists."""
    if cfg.adapter and not entry.adapters:
        takers = _takers(lambda e: e.adapters)
        need = " or ".join(f"a {label} {m} tower" for _, m, label in takers)
        builders = " or ".join(b for b, _, _ in takers)
        raise ValueError(f"{option}.adapter '{cfg.adapter}' needs {need} ({option}.builder: {builders}), "
                         f"not the {cfg.builder} {modality} tower")
    if cfg.adapter_config and not cfg.adapter:
        raise ValueError(f"{option}.adapter_config is set but {option}.adapter is not")
    if cfg.coop_n_ctx and not entry.coop:
        need = " or ".join(f"the {b} {m} tower" for b, m, _ in _takers(lambda e: e.coop))
        raise ValueError(f"{option}.coop_n_ctx (CoOp) needs {need}, not the {cfg.builder} {modality} tower")
    if cfg.pooler not in entry.poolers:
        need = " or ".join(sorted({b for b, _, _ in _takers(lambda e: cfg.pooler in e.poolers)}))
        if not need:
            raise ValueError(f"{option}.pooler '{cfg.pooler}' is not available for the {cfg.builder} builder; "
                             f"valid: {entry.poolers}")
        raise ValueError(f"{option}.pooler '{cfg.pooler}' needs the {need} builder, not '{cfg.builder}'")
    if cfg.features not in entry.features:
        need = " or ".join(f"the {b} {m} tower" for b, m, _ in _takers(lambda e: cfg.features in e.features))
        raise ValueError(f"{option}.features '{cfg.features}' needs {need}, not the {cfg.builder} {modality} tower")
    for key in ("lock_patterns", "train_patterns"):
        patterns = getattr(cfg, key)
        if not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"{option}.{key} must be a list of non-empty glob strings, got {patterns!r}")
    if cfg.lock and cfg.train_patterns:
        raise ValueError(f"{option}: lock: true freezes the whole tower; drop it to train only {option}.train_patterns")


def validate_tower(cfg: TowerConfig, modality: str) -> None:
    """Check the `modality` tower's config without downloading or building anything: a registered
    builder, the options it takes, then the builder's own `validate` (names, pretrained tags).

    Raises ValueError naming the option (`model.<modality>.<key>`)."""
    option = f"model.{modality}"
    entry = _entry(cfg, modality)
    _check_options(cfg, modality, entry, option)
    if entry.validate is not None:
        entry.validate(cfg, option)


def describe_tower(cfg: TowerConfig, modality: str) -> TowerDescription:
    """The image spec (image towers) or tokenizer (text towers) the built tower would have, without
    instantiating the model or loading weights (a builder registered without `describe` is built).
    Validates first (ValueError); a tokenizer that cannot be found fails when first called."""
    entry = _entry(cfg, modality)
    validate_tower(cfg, modality)
    option = f"model.{modality}"
    if entry.describe is not None:
        return entry.describe(cfg, option)
    tower = entry.build(cfg, option)
    return TowerDescription(image_spec=tower.image_spec, tokenizer=tower.tokenizer)


def build_tower(cfg: TowerConfig, modality: str) -> "Tower":
    """Build the `modality` tower named by `cfg.builder` / `cfg.name`, then apply adapters, locking,
    gradient checkpointing. Raises ValueError (bad names/options) or FileNotFoundError (weights)."""
    entry, option = _entry(cfg, modality), f"model.{modality}"
    validate_tower(cfg, modality)
    tower = entry.build(cfg, option)
    if cfg.weights:
        load_weights_file(tower, cfg.weights, f"{option}.weights")
    apply_locking(tower, lock=cfg.lock, lock_patterns=cfg.lock_patterns, train_patterns=cfg.train_patterns,
                  option=option)
    return tower


def load_weights_file(module: nn.Module, path: str, option: str) -> None:
    """Load a state dict saved from the tower or from its bare backbone (e.g. torchvision's own
    .pth files); keys of a removed classifier (`module.ignored_weight_prefixes`) are skipped."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{option}: weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = module.state_dict()
    if hasattr(module, "backbone") and not set(state) & set(own):
        state = {f"backbone.{k}": v for k, v in state.items()}
    ignored = tuple(getattr(module, "ignored_weight_prefixes", ()))
    state = {k: v for k, v in state.items() if k in own or not (ignored and k.startswith(ignored))}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"{option}: {path} does not match the tower: {str(err)[:500]}") from err
    if unexpected or (missing and len(missing) == len(own)):
        raise ValueError(f"{option}: {path} does not match the tower: missing {missing[:5]}, unexpected {unexpected[:5]}")


def enable_grad_checkpointing(module: nn.Module, option: str) -> None:
    """Turn on the library's own activation checkpointing (HF, timm, open_clip transformers).

    Raises ValueError where the module offers none (torchvision models, open_clip ModifiedResNet)."""
    if getattr(module, "supports_gradient_checkpointing", False):  # HuggingFace
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return
    try:
        if hasattr(module, "set_grad_checkpointing"):  # timm models, open_clip visual towers
            module.set_grad_checkpointing(True)
        else:  # open_clip text transformers: a flag on the transformer
            for m in module.modules():
                if hasattr(m, "grad_checkpointing"):
                    m.grad_checkpointing = True
    except (AssertionError, NotImplementedError) as err:
        raise ValueError(f"{option}.grad_checkpointing: {type(module).__name__} does not support it: {err}") from err
    if not any(getattr(m, "grad_checkpointing", False) for m in module.modules()):
        raise ValueError(f"{option}.grad_checkpointing: {type(module).__name__} does not support gradient "
                         "checkpointing (supported: HuggingFace, timm and open_clip transformer towers)")


def call_module(module: nn.Module, inputs):
    """A Tower's `encode_fn` for backbones that take the inputs as they are: `module(inputs)`."""
    return module(inputs)


class Tower(nn.Module):
    """One backbone plus what the data pipeline needs to feed it.

    `added_params`: names (relative to the tower) of parameters a builder added for parameter-
    efficient tuning (adapters, CoOp context); locking never freezes them, and the optimiser
    treats them like heads (no layer-wise decay, no backbone learning-rate ratio).
    `frozen_modules`: names of submodules that locking froze entirely; `DualEncoder.train()`
    keeps them in eval mode (BatchNorm statistics and dropout frozen).
    `source_logit_scale`: the exponentiated logit scale of the model the tower was cut from (open_clip: its
    pretrained value when weights were loaded), for `model.init_logit_scale: pretrained`; None: it has none.
    """

    def __init__(self, backbone: nn.Module, output_dim: int, encode_fn: Callable, *,
                 image_spec: ImageSpec | None = None, tokenizer: Callable | None = None):
        super().__init__()
        self.backbone = backbone
        self.output_dim = output_dim
        self._encode_fn = encode_fn
        self.image_spec = image_spec
        self.tokenizer = tokenizer
        self.added_params: list[str] = []
        self.frozen_modules: list[str] = []
        self.source_logit_scale: Optional[float] = None

    def forward(self, inputs):
        return self._encode_fn(self.backbone, inputs)

    encode = forward

    def example_inputs(self, batch: int = 2):
        """A small valid input on the tower's device: images [B, 3, S, S] or a token dict [B, L]."""
        device = next(self.parameters()).device
        if self.image_spec is not None:
            return torch.zeros(batch, 3, self.image_spec.size, self.image_spec.size, device=device)
        tokens = self.tokenizer(["a photo of a cat"] * batch)
        return {k: torch.as_tensor(np.asarray(v)).to(device) for k, v in tokens.items()}
