"""The configuration of every run: schema, allowed values, validation, command-line checks, and the one
reading of the composed config into run specs.

* :mod:`config.schema`: every key once - type, default, allowed values, status (used / accepted but unused /
  rejected), meaning (``docs/CONFIG.md`` is generated from it);
* :mod:`config.choices`: the allowed-value lists (read from the code that implements them) and the spelling
  rules of keys;
* :mod:`config.validation`: value checks after composition (``validate_config``) and notes on keys that
  have no effect (``config_warnings``);
* :mod:`config.read`: ``SpecReader`` - the composed config (and a checkpoint's stored config) into a validated
  :class:`engine.specs.RunSpec`; the only code below the entry points that reads a DictConfig;
* :mod:`config.cli`: checks of the raw command line before Hydra runs, the config groups, ``compose_config`` and
  the entry points' helpers.

Importing it registers the schema in Hydra's ConfigStore (``base_config``). Depends on Hydra/OmegaConf; the
packages whose values it checks (``ckconv``, ``models``, ``datasets``, ``engine``) never import it.
"""
from .cli import (CONFIG_DIR, CONFIG_NAME, USER_GROUPS, check_overrides, check_overrides_or_exit, compose_config,
                  explicit_keys, group_options, hydra_output_dir, prepare_argv, read_or_exit, run_entry,
                  suggest_keys)
from .errors import ConfigError
from .read import SpecReader, model_spec, read_command, run_spec
from .schema import Config, schema_keys, with_defaults
from .validation import config_warnings, validate_config

__all__ = ["CONFIG_DIR", "CONFIG_NAME", "USER_GROUPS", "Config", "ConfigError", "SpecReader", "check_overrides",
           "check_overrides_or_exit", "compose_config", "config_warnings", "explicit_keys", "group_options",
           "hydra_output_dir", "model_spec", "prepare_argv", "read_command", "read_or_exit", "run_entry", "run_spec",
           "schema_keys", "suggest_keys", "validate_config", "with_defaults"]
