"""Checkpoints: atomic writes, safe loading, one clear error for unreadable files.

A checkpoint is a dict with ``format`` (``CHECKPOINT_FORMAT``), ``model``, ``model_spec`` (the
:class:`models.ModelSpec` the weights belong to, as a dict: the model is rebuilt from it), ``optimizer``,
``schedule``, ``epoch`` (epochs completed), ``global_step``, ``best`` (best-epoch metrics), ``config`` (the
resolved config of the run as a plain dict), ``data_state`` (pMNIST permutation, npCIFAR10 noise),
``wandb_id``, ``elapsed_s`` (training wall time so far) and, in checkpoints of ``run_crossres.py``,
``crossres`` (a :class:`CrossResState`; its phase turns the run's config into the phase's).

Checkpoints of the earlier format (``LEGACY_FORMAT``) load too: they have no ``model_spec`` (the model is
read from ``config``), and in cross-resolution checkpoints ``config`` is already the phase's config.
Checkpoints of the original FlexConv code load where weights are read (``load_checkpoint(..., original=True)``,
mapped by :mod:`engine.original`); :func:`fetch_wandb_file` downloads a file of a W&B run.
"""
from __future__ import annotations

import glob
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from datasets.paths import atomic_write

from .original import ORIGINAL_FORMAT, is_original

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


def load_checkpoint(path: str | Path, *, original: bool = False) -> dict:
    """Load a checkpoint on the CPU with ``weights_only=True`` (no arbitrary code from the file).

    Any file that does not load - truncated, random bytes, a pickle of arbitrary objects - is one
    :class:`CheckpointError` naming the file. A checkpoint of the original FlexConv code (recognised by its
    content, :func:`engine.original.is_original`) is returned with ``format`` set to ``ORIGINAL_FORMAT`` where
    the caller can use one (``original=True``: loading weights, evaluating); elsewhere (resuming, plotting) it is
    a :class:`CheckpointError` that says how to use or convert it.
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
    if is_original(state):
        if not original:
            raise CheckpointError(f"{str(path)!r} is a checkpoint of the original FlexConv code, which holds "
                                  f"weights only: evaluate or fine-tune it with pretrained=True "
                                  f"pretrained_params.filepath=PATH and its model keys, or convert it once with "
                                  f"experiments/convert_original.py (then it resumes, evaluates and plots without "
                                  f"them)")
        return {**state, "format": ORIGINAL_FORMAT}
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


# --- files of W&B runs (pretrained_wandb=True) ----------------------------------------------------------
WANDB_TIMEOUT_S = 30
WANDB_FOLDER = "pretrained_wandb"  # inside the run directory


def download_wandb_file(run_path: str, filename: str, root: Path) -> Path:
    """The one call into W&B: ``filename`` of the run ``run_path`` (entity/project/run id) via W&B's public API
    into ``root``; returns the local path. Any failure raises (no network, no credentials, no such run or file)."""
    import wandb

    api = wandb.Api(timeout=WANDB_TIMEOUT_S)
    api.run(run_path).file(filename).download(root=str(root), replace=True).close()
    return Path(root) / filename


def fetch_wandb_file(run_path: str, filename: str, run_dir: Path) -> Path:
    """``pretrained_wandb=True``: download ``filename`` of the W&B run ``run_path`` into
    ``<run_dir>/pretrained_wandb/`` and return its path. It is downloaded into a temporary folder first, so a
    failed download leaves nothing behind; any failure is one :class:`CheckpointError` that says what failed
    and how to download the file by hand."""
    import shutil
    import tempfile

    target = Path(run_dir) / WANDB_FOLDER / filename
    try:
        with tempfile.TemporaryDirectory() as scratch:
            downloaded = download_wandb_file(run_path, filename, Path(scratch))
            if not downloaded.is_file() or downloaded.stat().st_size == 0:
                raise FileNotFoundError(f"W&B returned no file {filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(downloaded), target)
    except Exception as error:  # ImportError, wandb's CommError / UsageError, network errors, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"pretrained_wandb=True could not download {filename!r} from the W&B run {run_path!r} "
            f"({type(error).__name__}{': ' + reason if reason else ''}). W&B needs network access and credentials "
            f"(`wandb login`, or WANDB_API_KEY). To download the file by hand, on a machine that has them: open "
            f"https://wandb.ai/{run_path}/files, or run python -c \"import wandb; "
            f"wandb.Api().run('{run_path}').file('{filename}').download()\"; then pass pretrained=True "
            f"pretrained_params.filepath=<the file> instead of pretrained_wandb=True") from None
    print(f"pretrained_wandb: downloaded {filename} of the W&B run {run_path} to {target}")
    return target
