"""The one setuptools setting pyproject.toml cannot express: the top-level `recipes/` folder ships inside
the package as `raykd/recipes/` (package data of a mapped package; `packages.find` only finds folders
under raykd/). Everything else is in pyproject.toml."""
from setuptools import find_namespace_packages, setup

RECIPES = ["raykd.recipes"] + [f"raykd.recipes.{p}" for p in find_namespace_packages("recipes")]

setup(packages=find_namespace_packages(include=["raykd*"]) + RECIPES, package_dir={"raykd.recipes": "recipes"})
