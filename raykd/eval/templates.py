"""Prompt templates for zero-shot classification (Radford et al., 2021, "Learning Transferable Visual
Models From Natural Language Supervision", the OpenAI CLIP repository's ``notebooks/Prompt_Engineering``
and ``data/prompts.md``).

A template is a ``str`` with one ``{}`` placeholder for the class name. ``get_templates(name)`` looks a set
up by data set name (case-insensitive); unknown names fail with close matches.
"""
from __future__ import annotations

import difflib

IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

CIFAR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
)

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)

# Prompts used to embed single words for word similarity ("{}" is the bare word).
WORD_TEMPLATES: tuple[str, ...] = ("{}", "a photo of a {}.", "this is a {}.")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "imagenet": IMAGENET_TEMPLATES,
    "imagenet1k": IMAGENET_TEMPLATES,
    "cifar10": CIFAR_TEMPLATES,
    "cifar-10": CIFAR_TEMPLATES,
    "cifar100": CIFAR_TEMPLATES,
    "cifar-100": CIFAR_TEMPLATES,
    "default": DEFAULT_TEMPLATES,
    "word": WORD_TEMPLATES,
}


def list_templates() -> list[str]:
    """Names accepted by :func:`get_templates`."""
    return sorted(_TEMPLATES)


def get_templates(name: str) -> list[str]:
    """The prompt templates registered under ``name`` (case-insensitive).

    Raises:
        ValueError: unknown name; the message lists close matches.
    """
    key = name.lower()
    if key not in _TEMPLATES:
        close = difflib.get_close_matches(key, list(_TEMPLATES), n=3)
        raise ValueError(f"unknown template set {name!r}; close matches: {close}; known: {list_templates()}")
    return list(_TEMPLATES[key])


def templates_for(dataset_name: str) -> list[str]:
    """Templates for ``dataset_name`` if registered, else :data:`DEFAULT_TEMPLATES`."""
    return list(_TEMPLATES.get(dataset_name.lower(), DEFAULT_TEMPLATES))
