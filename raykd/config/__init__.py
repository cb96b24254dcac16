"""Typed recipes: `load_config(path_or_name, overrides)` -> `Config`."""
from raykd.config.loading import ConfigError, config_to_dict, load_config, save_config
from raykd.config.recipes import list_recipes, resolve_recipe
from raykd.config.schema import Config

__all__ = ["Config", "ConfigError", "config_to_dict", "list_recipes", "load_config", "resolve_recipe", "save_config"]
