"""Loss registry: ``@register_loss(name)`` fills it on import; ``get_loss`` builds by name."""

from __future__ import annotations

import difflib
import inspect

from torch import nn

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_loss(name: str):
    """Class decorator registering a loss class under ``name`` (stored as ``cls.name``)."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"loss {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_losses() -> list[str]:
    """Names of all registered losses, sorted."""
    return sorted(_REGISTRY)


def loss_class(name: str) -> type[nn.Module]:
    """The registered class for ``name`` (to inspect its capability flags and hparams).

    Raises:
        ValueError: unknown name; the message lists close matches and all names.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown loss {name!r}.{hint} Registered losses: {', '.join(list_losses())}")
    return _REGISTRY[name]


def loss_hparams(name: str) -> dict[str, object]:
    """Keyword hyper-parameters of loss ``name`` with their defaults."""
    params = inspect.signature(loss_class(name).__init__).parameters
    return {
        p.name: p.default
        for p in params.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def _type_matches(value, default) -> bool:
    """Whether ``value`` fits the type of ``default`` (ints pass for floats, bools only for bools)."""
    if default is None or default is inspect.Parameter.empty:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def get_loss(name: str, **hparams) -> nn.Module:
    """Build loss ``name`` with ``hparams`` overriding its defaults.

    Raises:
        ValueError: unknown loss name (with close matches), or an unknown hparam (naming it,
            the loss, and the accepted hparams).
        TypeError: an hparam whose value does not match the type of its default (e.g. the
            string "1e-4" for a float), naming the loss, the hparam and the value.
    """
    cls = loss_class(name)
    accepted = loss_hparams(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown hparam(s) {', '.join(map(repr, unknown))} for loss {name!r}; "
            f"accepted: {', '.join(accepted) or '(none)'}"
        )
    for key, value in hparams.items():
        if not _type_matches(value, accepted[key]):
            expected = type(accepted[key]).__name__
            raise TypeError(f"loss {name!r}: hparam {key!r} must be a {expected}, got {value!r}")
    return cls(**hparams)


FLAGS = ("needs_logit_scale", "needs_gather", "uni_directional", "needs_prototypes", "updates_prototypes",
         "needs_labels")


def loss_table() -> list[dict[str, object]]:
    """One row per registered loss, sorted by name, for rendering documentation tables.

    Keys: ``name``, ``paper``, the capability flags (``uni_directional``, ``needs_prototypes``,
    ``updates_prototypes``, ``needs_gather``, ``needs_logit_scale``, ``needs_labels``) and ``hparams``
    (name -> default).
    """
    rows = []
    for name in list_losses():
        cls = _REGISTRY[name]
        row = {"name": name, "paper": getattr(cls, "paper", "")}
        row.update({flag: bool(getattr(cls, flag, False)) for flag in FLAGS})
        row["hparams"] = loss_hparams(name)
        rows.append(row)
    return rows
