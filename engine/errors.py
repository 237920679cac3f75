"""User-facing errors: one clear message and a non-zero exit instead of a traceback.

Imports nothing heavy: ``config`` re-exports :class:`ConfigError` from here.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager


class ConfigError(ValueError):
    """A bad config key or value. The message names the key, the bad value and what is allowed."""


@contextmanager
def report_errors():
    """Print known user errors (bad config, missing data, bad checkpoint, diverged run) and exit 1."""
    from datasets import DatasetNotAvailableError

    from .checkpoint import CheckpointError
    from .trainer import NonFiniteLossError

    try:
        yield
    except (ConfigError, CheckpointError, DatasetNotAvailableError, NonFiniteLossError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        sys.exit(1)
