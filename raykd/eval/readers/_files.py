"""Small file helpers shared by the readers."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO


def require_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path. Raises FileNotFoundError naming the path if it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: str | Path, what: str = "folder") -> Path:
    """``path`` as a Path. Raises FileNotFoundError naming the path if it is not a directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def open_text(path: str | Path, what: str = "file") -> IO[str]:
    """Open a UTF-8 text file (transparently gunzipping ``*.gz``); FileNotFoundError names a missing path."""
    path = require_file(path, what)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")
