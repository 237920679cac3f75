"""User-facing errors: one clear message and a non-zero exit instead of a traceback."""
from __future__ import annotations

import sys
from contextlib import contextmanager

from datasets import DatasetNotAvailableError

from .checkpoint import CheckpointError
from config import ConfigError
from .trainer import NonFiniteLossError

USER_ERRORS = (ConfigError, CheckpointError, DatasetNotAvailableError, NonFiniteLossError)


@contextmanager
def report_errors():
    """Print known user errors (bad config, missing data, bad checkpoint, diverged run) and exit 1."""
    try:
        yield
    except USER_ERRORS as error:
        print(f"\nerror: {error}", file=sys.stderr)
        sys.exit(1)
