"""Arguments shared by the subcommands that take a recipe."""
from __future__ import annotations

import argparse


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (may extend others through `defaults:`) or a packaged recipe name (`raykd recipes list`)")
    add_overrides(parser, "override a config key, e.g. --set optim.lr=1e-4 (repeatable)")


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)
