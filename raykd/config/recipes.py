"""Packaged recipes: the YAML files under `recipes/`, shipped inside the package as `raykd/recipes/`.

A recipe is named by its path under the recipes folder without `.yaml` (`quickstart`,
`distill/rkd-minilm-teacher-shapes`, `sweeps/losses`) or, when unique, by its file name alone
(`rkd-minilm-teacher-shapes`). `resolve_recipe(name_or_path)` takes a path first, then a name.
In a checkout (editable install, PYTHONPATH) the folder is the top-level `recipes/`; in a wheel,
setup.py maps it to the package data `raykd/recipes/` — one copy either way.
"""
from __future__ import annotations

import difflib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from raykd.config.typed import ConfigError

PACKAGE = Path(__file__).resolve().parents[1]  # .../raykd
REFERENCE_KEYS = ("defaults", "recipe")  # keys naming other recipe files, relative to the file


def recipes_root() -> Path:
    """`raykd/recipes` of an installed wheel, else the checkout's top-level `recipes/`."""
    for root in (PACKAGE / "recipes", PACKAGE.parent / "recipes"):
        if root.is_dir():
            return root
    raise ConfigError(f"no packaged recipes found (looked in {PACKAGE / 'recipes'} and {PACKAGE.parent / 'recipes'})")


@dataclass(frozen=True)
class Recipe:
    name: str  # path under the recipes folder, without .yaml
    path: Path
    description: str  # the first sentence of the file's leading comment

    @property
    def is_sweep(self) -> bool:
        return self.name.startswith("sweeps/")


def description(path: Path, width: int = 100) -> str:
    """The first sentence of the comment block a recipe starts with ('' without one)."""
    words = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    text = " ".join(w for w in words if w)
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def list_recipes() -> list[Recipe]:
    """Every packaged recipe and sweep, sorted by name."""
    root = recipes_root()
    return [Recipe(p.relative_to(root).with_suffix("").as_posix(), p, description(p))
            for p in sorted(root.rglob("*.yaml"))]


def find_recipe(name: str) -> Recipe:
    """The packaged recipe called `name` (with or without folders and `.yaml`).

    Raises ConfigError listing close names when there is none, or the candidates when a bare file
    name is ambiguous."""
    key = name[:-len(".yaml")] if name.endswith(".yaml") else name
    recipes = list_recipes()
    by_name = {r.name: r for r in recipes}
    if key in by_name:
        return by_name[key]
    same_stem = [r for r in recipes if r.name.rsplit("/", 1)[-1] == key]
    if len(same_stem) == 1:
        return same_stem[0]
    if same_stem:
        raise ConfigError(f"recipe name '{name}' is ambiguous: {', '.join(r.name for r in same_stem)}")
    names = list(by_name) + [n.rsplit("/", 1)[-1] for n in by_name]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"recipe file not found: {name}, and no packaged recipe has that name{hint} "
                      "(`raykd recipes list` shows them)")


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: `name_or_path` itself when it is a file, else the packaged recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_absolute() or path.suffix not in ("", ".yaml") or str(name_or_path).startswith("."):
        raise ConfigError(f"recipe file not found: {path}")
    return find_recipe(str(name_or_path)).path


def references(path: Path) -> list[str]:
    """The relative file names a recipe's `defaults:` (or a sweep's `recipe:`) names."""
    data = yaml.load(path.read_text(), Loader=_TagsIgnored) or {}
    refs = []
    for key in REFERENCE_KEYS:
        value = data.get(key) or []
        refs += [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return [r for r in refs if not Path(r).is_absolute()]


def copy_recipe(name: str, dest: str | Path | None = None, overwrite: bool = False) -> list[Path]:
    """Copy a packaged recipe to edit, with the files it extends, keeping their relative layout.

    `dest`: a `.yaml` file, or a directory (default: the current one) where it goes under its name
    (`distill/rkd-minilm-teacher-shapes` -> DEST/distill/rkd-minilm-teacher-shapes.yaml). Returns the
    files written; raises ConfigError rather than overwrite a file (unless `overwrite`)."""
    recipe = find_recipe(name)
    dest = Path(dest) if dest else Path.cwd()
    target = dest if dest.suffix == ".yaml" else dest / f"{recipe.name}.yaml"
    plan = _copy_plan(recipe.path, target)
    if not overwrite:
        existing = [str(t) for _, t in plan if t.exists()]
        if existing:
            raise ConfigError(f"not overwriting {', '.join(existing)} (pass --force to replace)")
    for source, out in plan:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out)
    return [t for _, t in plan]


def _copy_plan(source: Path, target: Path, seen: set | None = None) -> list[tuple[Path, Path]]:
    """(source, target) for the recipe and, recursively, the files it references."""
    seen = set() if seen is None else seen
    if source.resolve() in seen:
        return []
    seen.add(source.resolve())
    plan = [(source, target)]
    for ref in references(source):
        parent = source.parent / ref
        if parent.is_file():
            plan += _copy_plan(parent, Path(_normalise(target.parent / ref)), seen)
    return plan


def _normalise(path: Path) -> str:
    return os.path.normpath(path)


class _TagsIgnored(yaml.SafeLoader):
    """Reads a recipe's top-level keys without knowing its tags (`!replace` belongs to `loading`)."""


_TagsIgnored.add_multi_constructor("!", lambda loader, suffix, node: None)
