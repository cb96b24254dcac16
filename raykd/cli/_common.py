"""Arguments shared by the subcommands that take a recipe."""
from __future__ import annotations

import argparse


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML (may extend others through `defaults:`) or a packaged recipe name (`raykd recipes list`)")
    add_overrides(parser, "override a config key, e.g. --set optim.lr=1e-4 (repeatable)")


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_model_source_args(parser: argparse.ArgumentParser, group) -> None:
    """`--recipe` and `--model` in the mutually exclusive `group` of model sources, and `--set` for the recipe
    (`raykd.models.sources.ModelSource`)."""
    group.add_argument("--recipe", help="evaluate the model this recipe builds: its pretrained weights, random "
                                        "where it has none (a warning says so); no training")
    group.add_argument("--model", metavar="SPEC",
                       help="evaluate a model without a recipe: BUILDER:NAME[:PRETRAINED], e.g. "
                            "openclip:ViT-B-32:openai (two towers), sbert:PATH (text only)")
    add_overrides(parser, "with --recipe: override a config key, e.g. --set model.image.pretrained=openai")
