"""Tower builders: a registry of functions `(TowerConfig, option) -> Tower`, filled by decorators;
`validate_tower` checks a tower's config and `describe_tower` gives its image spec or tokenizer,
both without building it.

A `Tower` wraps one backbone with the contract in DESIGN.md: `encode(inputs) -> Tensor[B, D]`,
`output_dim`, and `image_spec` (image towers) or `tokenizer` (text towers; picklable, returning
fixed-length int64 arrays). Builders never download at import time; weights come from a local
file, a local directory, a cache directory, or the library's own hub call when a pretrained
tag/name is asked for — and when that is impossible offline, the error says what to download and
where to put it.

Families (one file each): `openclip_towers` (image, text + CoOp), `torchvision_towers` (image),
`timm_towers` (image), `hf_towers` (huggingface text with poolers and adapters, sbert text),
`chineseclip_towers` (image, text), `torchhub_towers` (image).
The registry and factory live in `_registry`; locking in `locking`; adapters in `adapters`.
"""
from __future__ import annotations

from raykd.models import (chineseclip_towers, hf_towers, openclip_towers, timm_towers,  # noqa: F401  (registration)
                          torchhub_towers, torchvision_towers)
from raykd.models._registry import (PretrainedUnavailableError, Tower, TowerDescription, build_tower, describe_tower,
                                    enable_grad_checkpointing, list_builders, load_weights_file, register_tower,
                                    validate_tower)
from raykd.models.hf_towers import HFTokenizer, PromptTokenizer
from raykd.models.openclip_towers import OPENAI_MEAN, OPENAI_STD, OpenCLIPText, OpenCLIPTokenizer
from raykd.models.torchvision_towers import IMAGENET_MEAN, IMAGENET_STD, strip_classifier

__all__ = [
    "HFTokenizer", "IMAGENET_MEAN", "IMAGENET_STD", "OPENAI_MEAN", "OPENAI_STD", "OpenCLIPText", "OpenCLIPTokenizer",
    "PretrainedUnavailableError", "PromptTokenizer", "Tower", "TowerDescription", "build_tower", "describe_tower",
    "enable_grad_checkpointing", "list_builders", "load_weights_file", "register_tower", "strip_classifier",
    "validate_tower",
]
