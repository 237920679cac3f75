"""Hydra callbacks named in ``cfg/config.yaml``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf


def unwritable_folder(path: Path) -> Path | None:
    """The existing folder that stops this process from creating or writing ``path`` (``path`` itself, or the
    nearest existing parent, if it is not a writable directory); None when ``path`` can be written."""
    for folder in [path, *path.parents]:
        if folder.exists():
            return None if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else folder
    return None


class RunDirCheck(Callback):
    """A run or sweep directory that cannot be written is one error message and exit 1, checked before Hydra
    creates it (Hydra's own failure is a traceback).

    Under torchrun only rank 0 checks: the other ranks write nothing (``config.cli.hydra_outputs_of_this_rank``).
    """

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")

    @staticmethod
    def _check(config, key: str) -> None:
        if int(os.environ.get("RANK", "0")) != 0:
            return
        try:
            HydraConfig.instance().set_config(config)  # as Hydra's job setup does: resolves ${hydra:job.name} etc.
            value = OmegaConf.select(config, key)
        except Exception:  # an interpolation only the job itself can resolve: leave the check to Hydra
            return
        if not value:
            return
        path = Path(str(value)).absolute()
        folder = unwritable_folder(path)
        if folder is not None:
            reason = "is not a directory" if not folder.is_dir() else "is not writable"
            print(f"error: cannot write the run directory {path}: {folder} {reason}; choose another one with "
                  f"{key}=<directory>", file=sys.stderr)
            sys.exit(1)
