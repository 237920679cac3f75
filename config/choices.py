"""Allowed values of the enum-like keys, read from the code that implements them, and the spelling rules of keys
that accept several spellings.

Every allowed-value list lives with what implements it, so the config and the code cannot disagree:

* ``net.type``: the model registry (``models.list_models``); ``conv.type``, ``net.norm``, ``net.nonlinearity``:
  the factories of ``models.layers``;
* ``dataset``: the dataset registry; ``protocol``, ``cross_res.interpolation``: ``datasets``;
* ``kernel.*`` and the anti-aliasing options: ``ckconv``; ``conv.horizon`` and ``conv.use_fft`` are parsed by
  ``ckconv`` itself (``parse_horizon``, ``parse_use_fft``); per-dataset options (``train.augment``, resizing,
  ...) are checked by the dataset's own spec;
* ``train.optimizer`` / ``train.scheduler``: the name -> class tables of ``engine.optim``; ``train.compile``,
  ``wandb.mode``, ``device`` and the ``profile.*`` modes: the engine modules that use them.

Those modules import torch, so each list is a function, called only when a value is checked.
"""
from __future__ import annotations

from typing import Any

# The entry points whose own keys validation checks (config.validation.validate_config(entry=...)).
ENTRIES = ("run_experiment", "run_crossres", "run_profiler")


# --- values owned by the code that implements them --------------------------------------------------
def model_names() -> tuple[str, ...]:
    from models import list_models

    return tuple(list_models())


def dataset_names() -> tuple[str, ...]:
    from datasets import list_datasets

    return tuple(list_datasets())


def protocols() -> tuple[str, ...]:
    from datasets import PROTOCOLS

    return PROTOCOLS


def interpolations() -> tuple[str, ...]:
    from datasets import INTERPOLATION_MODES

    return tuple(INTERPOLATION_MODES)


def conv_types() -> tuple[str, ...]:
    from models.layers import CONV_TYPES

    return CONV_TYPES


def net_norms() -> tuple[str, ...]:
    from models.layers import NET_NORMS

    return tuple(NET_NORMS)


def nonlinearities() -> tuple[str, ...]:
    from models.layers import NONLINEARITIES

    return tuple(NONLINEARITIES)


def kernel_types() -> tuple[str, ...]:
    from ckconv.nn.kernelnets import KERNEL_TYPES

    return tuple(KERNEL_TYPES)


def kernel_bias_inits() -> tuple:
    from ckconv.nn.kernelnets.common import BIAS_INITS

    return (None, "None") + tuple(b for b in BIAS_INITS if b != "default")


def mask_types() -> tuple[str, ...]:
    from ckconv.nn.mask import MASK_TYPES

    return MASK_TYPES


def regularizer_targets() -> tuple[str, ...]:
    from ckconv.nn.regularizers import TARGETS

    return TARGETS


def regularizer_functions() -> tuple[str, ...]:
    from ckconv.nn.regularizers import FUNCTIONS

    return FUNCTIONS


def regularizer_methods() -> tuple[str, ...]:
    from ckconv.nn.regularizers import METHODS

    return METHODS


def optimizers() -> tuple[str, ...]:
    from engine.optim import OPTIMIZERS

    return tuple(OPTIMIZERS)


def schedulers() -> tuple[str, ...]:
    from engine.optim import SCHEDULERS

    return tuple(SCHEDULERS)


def compile_options() -> tuple:
    from engine.build import COMPILE_BACKENDS

    return (False,) + COMPILE_BACKENDS


def wandb_modes() -> tuple[str, ...]:
    from engine.logger import WANDB_MODES

    return WANDB_MODES


def devices() -> tuple[str, ...]:
    from engine.runtime import DEVICES

    return DEVICES


def profile_modes() -> tuple[str, ...]:
    from engine.profiler import PROFILE_MODES

    return PROFILE_MODES


def profile_data_modes() -> tuple[str, ...]:
    from engine.profiler import PROFILE_DATA_MODES

    return PROFILE_DATA_MODES


# --- spellings -----------------------------------------------------------------------------------
def parse_scheduler(name: str) -> str:
    """``train.scheduler``: "", "none" and "None" all mean no scheduler (the original's default was "")."""
    return "none" if str(name).strip().lower() in ("", "none") else str(name)


def parse_augment(value: Any) -> str:
    """``train.augment``: "None" (the original's spelling), "none" and null all mean no augmentation."""
    return "None" if value is None or str(value).strip().lower() == "none" else str(value)


def parse_bias_init(value: Any) -> str | None:
    """``kernel.bias_init``: the original default is the STRING "None" = PyTorch's default init."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none")):
        return None
    return value


def parse_resume(value: Any) -> bool | str:
    """``train.resume``: False (start fresh), True (this run directory's last.pt), "auto" (the same, and a
    finished run is not retrained) or a path."""
    if value in (None, False, "", "false", "False"):
        return False
    if value in (True, "true", "True"):
        return True
    return str(value)


def parse_compile(value: Any) -> bool | str:
    """``train.compile``: False (eager), True (= "inductor") or a backend name of :data:`COMPILE_BACKENDS`."""
    if value in (None, False, "", "false", "False"):
        return False
    if value in (True, "true", "True"):
        return "inductor"
    return str(value)


def parse_resize(value: Any) -> int | None:
    """``cross_res.resize`` "h,w" (or "h") -> the square side ``h``; "" -> None (native size).

    Images are square, as in the original, which read only ``h``; a non-square size is an error
    rather than silently ignored.
    """
    text = str(value or "").strip().strip("[]()")
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts) or len(parts) > 2:
        raise ValueError("must be 'h,w' with positive ints (or '' for the native size), e.g. '16,16'")
    if len(parts) == 2 and parts[0] != parts[1]:
        raise ValueError("images are square: h and w must be equal, e.g. '16,16'")
    return int(parts[0])


def is_cuda_device(value: Any) -> bool:
    text = str(value)
    return text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())


def format_allowed(allowed) -> str:
    return ", ".join("''" if a == "" else ("null" if a is None else str(a)) for a in allowed)
