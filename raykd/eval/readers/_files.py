"""Small file helpers shared by the readers."""
from __future__ import annotations

import contextlib
import functools
import gzip
import zipfile
from pathlib import Path
from typing import IO

# What a reader raises on a file that is there but not in the expected format (UnicodeDecodeError and
# json.JSONDecodeError are ValueErrors; BadGzipFile an OSError).
PARSE_ERRORS = (ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, gzip.BadGzipFile)


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


@contextlib.contextmanager
def naming_file(path: str | Path, what: str = "file"):
    """Inside the block, a parse failure (:data:`PARSE_ERRORS`) becomes ``ValueError("<path>: malformed <what>:
    <cause>")``; errors that already name the path, and FileNotFoundError, pass through unchanged."""
    try:
        yield
    except FileNotFoundError:
        raise
    except PARSE_ERRORS as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: malformed {what}: {type(exc).__name__}: {exc}") from exc


def names_file(what: str):
    """Decorator form of :func:`naming_file` for a reader whose first argument is the file it reads."""
    def wrap(fn):
        @functools.wraps(fn)
        def reader(path, *args, **kwargs):
            with naming_file(path, what):
                return fn(path, *args, **kwargs)
        return reader
    return wrap
