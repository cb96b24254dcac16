"""`raykd eval elevater ...`: the ELEVATER suite on a checkpoint (`raykd eval elevater --help`)."""
from __future__ import annotations

from raykd.eval.elevater.cli import main


__all__ = ["main"]
