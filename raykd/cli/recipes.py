"""`raykd recipes list` and `raykd recipes copy NAME [DEST]`: the recipes and sweeps shipped in the package.

`raykd train NAME`, `raykd check NAME` and `raykd tune NAME` take these names as well as paths.
"""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("recipes", help="list the packaged recipes and sweeps, or copy one to edit")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the packaged recipes with their one-line description")
    ls.set_defaults(fn=list_recipes)
    cp = actions.add_parser("copy", help="copy a packaged recipe (and the files it extends) to edit")
    cp.add_argument("name", help="a name from `raykd recipes list`, e.g. quickstart or distill/rkd-minilm-teacher-shapes")
    cp.add_argument("dest", nargs="?", default=None,
                    help="a .yaml file, or a directory (default: the current one) where it keeps its name")
    cp.add_argument("--force", action="store_true", help="overwrite existing files")
    cp.set_defaults(fn=copy)


def list_recipes(args) -> int:
    from raykd.config.recipes import list_recipes as packaged, recipes_root  # only the config layer

    recipes = packaged()
    width = max(len(r.name) for r in recipes)
    for kind, group in (("recipes", [r for r in recipes if not r.is_sweep]),
                        ("sweeps (raykd tune NAME)", [r for r in recipes if r.is_sweep])):
        print(f"{kind}:")
        for r in group:
            print(f"  {r.name.ljust(width)}  {r.description}")
    print(f"(in {recipes_root()}; `raykd recipes copy NAME [DEST]` copies one to edit)", file=sys.stderr)
    return 0


def copy(args) -> int:
    from raykd.config.recipes import copy_recipe  # only the config layer

    written = copy_recipe(args.name, args.dest, overwrite=args.force)
    print(f"copied {args.name} to {written[0]}")
    for path in written[1:]:
        print(f"  with {path} (it extends it)")
    return 0
