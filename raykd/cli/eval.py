"""`raykd eval ...` (tasks on a checkpoint: `raykd eval --help`) and `raykd eval elevater ...` (the
ELEVATER suite: `raykd eval elevater --help`). Both parse their own arguments."""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    sub.add_parser("eval", help="evaluate a checkpoint: raykd eval --help, raykd eval elevater --help")


def main(argv: list[str]) -> int:
    from raykd.cli import elevater
    from raykd.eval.cli import main as eval_main  # torch and Ray load on use, not for `raykd --help`

    try:
        if argv[:1] == ["elevater"]:
            return elevater.main(argv[1:])
        return eval_main(argv)
    except (ValueError, FileNotFoundError) as err:
        print(f"raykd eval: error: {err}", file=sys.stderr)
        return 2
