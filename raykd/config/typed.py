"""Typed construction of config dataclasses from plain mappings (YAML), with errors that name the key.

Below `schema` (whose dataclasses build their nested parts with it) and `loading` (recipes, overrides).
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Literal, Union, get_args, get_origin


class ConfigError(ValueError):
    """A recipe or override that does not describe a valid config."""


def from_mapping(data: dict, cls: type, prefix: str = "") -> Any:
    """Build dataclass `cls` from a plain mapping, checking keys, types and choices."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    sections = getattr(cls, "SECTIONS", "")  # a mapping field that the keys that are not fields fill
    kwargs, extra = {}, {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields and sections:
            extra[key] = _coerce(value, get_args(hints[sections])[1], dotted)
        elif key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{dotted}'{hint} (valid keys here: {', '.join(fields)})")
        else:
            kwargs[key] = _coerce(value, hints[key], dotted)
    if sections:  # sections given replace the default ones of the same name; the other defaults stay
        kwargs[sections] = {**fields[sections].default_factory(), **kwargs.get(sections, {}), **extra}
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, dotted: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_mapping(value, hint, prefix=f"{dotted}.")
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(f"'{dotted}' must be one of {list(choices)}, got {value!r}")
        return value
    if origin is Union:
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:  # Optional[X]
            return _coerce(value, args[0], dotted)
        for arg in args:  # the first alternative the value fits (float before Literal['pretrained'])
            try:
                return _coerce(value, arg, dotted)
            except ConfigError:
                continue
        raise ConfigError(f"'{dotted}' must be {' or '.join(_describe(a) for a in args)}, got {value!r}")
    if origin is dict and dataclasses.is_dataclass(get_args(hint)[-1]) and isinstance(value, dict):
        return {k: _coerce(v, get_args(hint)[-1], f"{dotted}.{k}") for k, v in value.items()}
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"'{dotted}' must be int, got bool {value!r}")
    if expected is str and value is None:
        return ""
    if not isinstance(value, expected):
        raise ConfigError(f"'{dotted}' must be {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _describe(hint: Any) -> str:
    """'float', or the choices of a Literal: for errors."""
    if get_origin(hint) is Literal:
        return " or ".join(repr(c) for c in get_args(hint))
    return getattr(hint, "__name__", str(hint))
