"""The configuration of every run: schema, allowed values, validation and command-line checks.

* :mod:`config.schema`: every key once - type, default, allowed values, meaning (``docs/CONFIG.md`` is
  generated from it);
* :mod:`config.choices`: the allowed-value lists and the spelling rules of keys;
* :mod:`config.validation`: value checks after composition (``validate_config``) and notes on keys that
  have no effect (``config_warnings``);
* :mod:`config.cli`: checks of the raw command line before Hydra runs, the config groups, ``compose_config``.

Importing it registers the schema in Hydra's ConfigStore (``base_config``). Depends on Hydra/OmegaConf;
``models``, ``datasets`` and ``ckconv`` are imported only to check the values they own.
"""
from .cli import (CONFIG_DIR, CONFIG_NAME, USER_GROUPS, check_overrides, check_overrides_or_exit, compose_config,
                  explicit_keys, group_options, suggest_keys, validate_or_exit)
from .errors import ConfigError
from .schema import Config, schema_keys, with_defaults
from .validation import config_warnings, validate_config

__all__ = ["CONFIG_DIR", "CONFIG_NAME", "USER_GROUPS", "Config", "ConfigError", "check_overrides",
           "check_overrides_or_exit", "compose_config", "config_warnings", "explicit_keys", "group_options",
           "schema_keys", "suggest_keys", "validate_config", "validate_or_exit", "with_defaults"]
