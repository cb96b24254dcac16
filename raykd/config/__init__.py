"""Typed recipes: `load_config(path, overrides)` -> `Config`."""
from raykd.config.loading import ConfigError, config_to_dict, load_config, save_config
from raykd.config.schema import Config

__all__ = ["Config", "ConfigError", "config_to_dict", "load_config", "save_config"]
