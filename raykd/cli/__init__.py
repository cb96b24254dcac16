"""`raykd train | eval | tune | check | data | recipes | report`: one module per subcommand, each thin (parse, load, call
the library). Each module has `add_parser(subparsers)`; `raykd eval` (and `raykd eval elevater`) parse
their own arguments. User errors (ValueError, FileNotFoundError, TypeError) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import sys

from raykd.cli import check, data, eval, recipes, report, train, tune


SUBCOMMANDS = (train, eval, tune, check, data, recipes, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raykd", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:  # `raykd eval ...` and `raykd eval elevater ...` own their arguments
        return eval.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"raykd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
