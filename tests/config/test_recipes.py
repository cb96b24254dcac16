"""Packaged recipes: names, descriptions, resolution (path first, then name), copying with `defaults:`."""
from __future__ import annotations

import pytest

from raykd.config import ConfigError, load_config
from raykd.config.loading import load_recipe_dict
from raykd.config.recipes import copy_recipe, description, find_recipe, list_recipes, recipes_root, resolve_recipe
from tests.conftest import REPO


def test_every_yaml_under_recipes_is_listed_with_a_description():
    assert recipes_root() == REPO / "recipes"  # the checkout's one copy
    recipes = list_recipes()
    assert {r.path for r in recipes} == set((REPO / "recipes").rglob("*.yaml"))
    names = {r.name: r for r in recipes}
    assert "quickstart" in names and "sweeps/losses" in names and "distill/rkd-minilm-teacher-shapes" in names
    assert all(r.description for r in recipes)
    assert names["quickstart"].description == (
        "Tiny CLIP on the built-in `shapes` data: 2 Ray Train workers on CPU, a few minutes.")
    assert names["sweeps/losses"].is_sweep and not names["quickstart"].is_sweep


def test_description_is_the_first_sentence_of_the_leading_comment(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# First sentence, which goes\n# on. Second sentence.\nrun: {}\n# not this\n")
    assert description(path) == "First sentence, which goes on."
    path.write_text("run: {}\n")
    assert description(path) == ""


@pytest.mark.parametrize("name", ["distill/rkd-minilm-teacher-shapes", "rkd-minilm-teacher-shapes",
                                  "distill/rkd-minilm-teacher-shapes.yaml"])
def test_names_with_or_without_folder_and_suffix(name):
    assert find_recipe(name).path == REPO / "recipes/distill/rkd-minilm-teacher-shapes.yaml"


def test_unknown_name_lists_close_names():
    with pytest.raises(ConfigError, match=r"no packaged recipe has that name; did you mean 'quickstart'"):
        resolve_recipe("quickstrat")


def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("run: {name: mine}\n")
    assert resolve_recipe("quickstart").resolve() == tmp_path / "quickstart"
    assert load_config("quickstart").run.name == "mine"
    with pytest.raises(ConfigError, match="recipe file not found: .*nope.yaml"):
        resolve_recipe(tmp_path / "nope.yaml")  # an absolute path is never a name


def test_load_config_by_name_keeps_defaults_inheritance():
    by_name = load_config("rkd-minilm-teacher-shapes", ["train.epochs=1"])
    by_path = load_config(REPO / "recipes/distill/rkd-minilm-teacher-shapes.yaml", ["train.epochs=1"])
    assert by_name == by_path
    assert by_name.loss.name == "RKD" and by_name.model.text.builder == "huggingface"  # from the base recipe


def test_copy_brings_the_files_it_extends_and_still_loads(tmp_path):
    written = copy_recipe("distill/rkd-minilm-teacher-shapes", tmp_path / "mine.yaml")
    assert written == [tmp_path / "mine.yaml", tmp_path / "base-minilm-teacher-shapes.yaml"]
    assert load_recipe_dict(written[0]) == load_recipe_dict(REPO / "recipes/distill/rkd-minilm-teacher-shapes.yaml")
    with pytest.raises(ConfigError, match="not overwriting"):
        copy_recipe("distill/rkd-minilm-teacher-shapes", tmp_path / "mine.yaml")
    assert copy_recipe("distill/rkd-minilm-teacher-shapes", tmp_path / "mine.yaml", overwrite=True) == written


def test_copy_into_a_directory_keeps_the_name_and_relative_layout(tmp_path):
    from raykd.tune import load_sweep

    written = copy_recipe("sweeps/losses", tmp_path)
    assert written == [tmp_path / "sweeps/losses.yaml", tmp_path / "quickstart.yaml"]
    assert load_sweep(written[0]).recipe == tmp_path / "quickstart.yaml"
