"""Checkpoints: atomic writes, safe loading, one clear error for unreadable files.

A checkpoint is a dict with ``format`` (``CHECKPOINT_FORMAT``), ``model``, ``model_spec`` (the
:class:`models.ModelSpec` the weights belong to, as a dict: the model is rebuilt from it), ``optimizer``,
``schedule``, ``epoch`` (epochs completed), ``global_step``, ``best`` (best-epoch metrics), ``config`` (the
resolved config of the run as a plain dict), ``data_state`` (pMNIST permutation, npCIFAR10 noise),
``wandb_id``, ``elapsed_s`` (training wall time so far) and, in checkpoints of ``run_crossres.py``,
``crossres`` (a :class:`CrossResState`; its phase turns the run's config into the phase's).

Checkpoints of the earlier format (``LEGACY_FORMAT``) load too: they have no ``model_spec`` (the model is
read from ``config``), and in cross-resolution checkpoints ``config`` is already the phase's config.
"""
from __future__ import annotations

import glob
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from datasets.paths import atomic_write

CHECKPOINT_FORMAT = "flexconv-checkpoint-v2"
LEGACY_FORMAT = "flexconv-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, corrupt, or not one of ours."""


@dataclass
class CrossResState:
    """Where a cross-resolution run stands, stored in every checkpoint ``run_crossres.py`` writes.

    ``config`` is the whole run's config (each phase's config derives from it), so a resume needs no command
    line; ``source`` holds the finished source phase's results (test accuracy, epochs, ...), ``ootb`` the
    out-of-the-box result at the target resolution; ``complete`` marks ``source_model.pt``.
    """

    phase: str                   # "source" | "finetune"
    config: dict
    source: dict | None = None
    ootb: dict | None = None
    complete: bool = False

    @classmethod
    def of(cls, checkpoint: dict, path) -> "CrossResState":
        state = checkpoint.get("crossres")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} has no cross-resolution state; it was not written by run_crossres.py")
        return cls(**state)


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (``datasets.paths.atomic_write``): a run killed while saving
    leaves the previous checkpoint intact."""
    path = Path(path)
    # Temp files of this checkpoint left by a process killed while writing it (only one process writes a
    # given checkpoint, so none of them is still being written).
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    with atomic_write(path) as handle:
        torch.save({**state, "format": CHECKPOINT_FORMAT}, handle)


# torch's weights-only unpickler names what it refused, e.g. "Unsupported global: GLOBAL builtins.exec".
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint on the CPU with ``weights_only=True`` (no arbitrary code from the file).

    Any file that does not load - truncated, random bytes, a pickle of arbitrary objects - is one
    :class:`CheckpointError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on the pickle protocol of a foreign file
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler fails on garbage with any exception type (IndexError, ...)
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused:
            raise CheckpointError(f"checkpoint {str(path)!r} was not loaded: it holds a Python object "
                                  f"({refused.group(1)}) that safe (weights-only) loading refuses, because unpickling "
                                  f"it could run arbitrary code; this project's checkpoints hold only tensors and "
                                  f"plain values") from None
        raise CheckpointError(f"checkpoint {str(path)!r} could not be read: corrupt, truncated or not a PyTorch "
                              f"checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") not in (CHECKPOINT_FORMAT, LEGACY_FORMAT):
        raise CheckpointError(f"{str(path)!r} is not a checkpoint of this project (expected format "
                              f"{CHECKPOINT_FORMAT!r}); a bare state dict can be loaded with "
                              f"model.load_state_dict(torch.load(path))")
    return state


def _shape(tensor) -> list[int]:
    return list(getattr(tensor, "shape", ()))


def _listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def state_dict_mismatch(model_state: dict, stored: dict, *, strict: bool = True, limit: int = 3) -> str:
    """Why ``stored`` (a checkpoint's weights) does not load into a model whose state dict is ``model_state``:
    the parameters of another shape, then (``strict``) those missing from and unexpected in the checkpoint,
    the first ``limit`` of each with their shapes and "and N more". "" when they fit.

    torch's own message is one line per key with the shapes, dozens of lines for a model of another width.
    """
    resized = [f"{key} {_shape(stored[key])} in the checkpoint, {_shape(value)} in the model"
               for key, value in model_state.items() if key in stored and _shape(stored[key]) != _shape(value)]
    parts = [f"{len(resized)} of another shape: {_listed(resized, limit)}"] if resized else []
    if strict:
        missing = [f"{key} {_shape(value)}" for key, value in model_state.items() if key not in stored]
        unexpected = [f"{key} {_shape(value)}" for key, value in stored.items() if key not in model_state]
        if missing:
            parts.append(f"{len(missing)} missing from the checkpoint: {_listed(missing, limit)}")
        if unexpected:
            parts.append(f"{len(unexpected)} in the checkpoint but not in the model: {_listed(unexpected, limit)}")
    return "; ".join(parts)
