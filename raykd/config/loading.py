"""Load recipes: YAML with `defaults:` inheritance, `--set` overrides, typed validation.

A recipe is a YAML mapping whose top-level keys are the sections of `raykd.config.schema.Config`.
`defaults: other.yaml` (or a list) names recipes it extends, relative to its own folder; later
files and the recipe itself win key by key. A mapping tagged `!replace` (e.g.
`hparams: !replace {n_prototypes: 64}`) replaces the parent's mapping instead of merging into it.
Every error names the dotted key and, where it helps, the file and the valid choices.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from raykd.config.recipes import resolve_recipe
from raykd.config.schema import Config
from raykd.config.typed import ConfigError, from_mapping


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 insists on `1.0e-4`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"),
)


class Replace(dict):
    """A mapping tagged `!replace` in a recipe: it replaces its parent's mapping instead of merging."""


_Loader.add_constructor("!replace", lambda loader, node: Replace(loader.construct_mapping(node, deep=True)))


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------- YAML + inheritance


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    try:
        data = yaml_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def load_recipe_dict(path: str | Path, _seen: tuple = ()) -> dict:
    """The recipe at `path` merged over the recipes its `defaults:` names (depth first)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: circular `defaults:` chain: {' -> '.join(map(str, _seen + (path,)))}")
    data = read_yaml(path)
    parents = data.pop("defaults", None) or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list):
        raise ConfigError(f"{path}: `defaults` must be a file name or a list of them")
    merged: dict = {}
    for parent in parents:
        parent_path = (path.parent / parent) if not Path(parent).is_absolute() else Path(parent)
        if not parent_path.is_file():
            raise ConfigError(f"{path}: `defaults` names a missing file: {parent_path}")
        merged = deep_merge(merged, load_recipe_dict(parent_path, _seen + (path,)))
    return deep_merge(merged, data)


def deep_merge(base: dict, update: dict) -> dict:
    """`update` over `base`, mappings merged key by key, except those tagged `!replace` (taken whole)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Replace):
            out[key] = dict(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- --set overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b=value' -> (['a', 'b'], typed value). Values are parsed as YAML: 3, 1e-4, true, [1, 2]."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set has an empty key in {text!r}")
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = dict(data)
    for text in overrides or []:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[path[-1]] = value
    return data


# ---------------------------------------------------------------- typed construction


def build_config(data: dict, cls: type = Config, prefix: str = "") -> Any:
    """Build dataclass `cls` (default: the whole `Config`) from a plain mapping, checking keys, types and choices."""
    return from_mapping(data, cls, prefix)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Recipe file (or packaged recipe name, see `raykd.config.recipes`) + overrides -> validated `Config`
    (no Ray, no models)."""
    data = apply_overrides(load_recipe_dict(resolve_recipe(path)), overrides or [])
    return build_config(data)


def config_to_dict(cfg: Config) -> dict:
    """`cfg` as plain data, in the recipe's shape (a `SECTIONS` mapping's entries are keys of its section)."""
    return _lift_sections(cfg, dataclasses.asdict(cfg))


def _lift_sections(obj: Any, data: dict) -> dict:
    for f in dataclasses.fields(obj):
        if dataclasses.is_dataclass(getattr(obj, f.name)):
            _lift_sections(getattr(obj, f.name), data[f.name])
    sections = getattr(type(obj), "SECTIONS", "")
    if sections:
        data.update(data.pop(sections))
    return data


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
