"""Allowed values of the enum-like keys, and the rules for keys that accept several spellings.

Each list and each rule exists once, here or in the package that implements it:

* values implemented by a registry or a layer are read from there: ``net.type`` from ``models``,
  ``dataset`` from ``datasets``, ``kernel.type`` and the anti-aliasing options from ``ckconv``
  (:func:`model_names`, ...);
* the layer arguments ``conv.horizon`` and ``conv.use_fft`` are parsed by ``ckconv`` itself
  (``ckconv.nn.grids.parse_horizon``, ``ckconv.nn.functional.parse_use_fft``), so the layer and the
  config cannot disagree; per-dataset options (``train.augment``, resizing, ...) are checked by the
  dataset's own spec (``datasets.get_dataset_spec(name).check_options``);
* everything else is listed below and read from here by the schema, validation, ``models`` and
  ``engine``.

The registry lookups import torch, so they are functions, called only when a value is checked.
"""
from __future__ import annotations

from typing import Any

PROTOCOLS = ("clean", "paper")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
WANDB_MODES = ("auto", "online", "offline", "disabled")
NET_NORMS = ("BatchNorm", "LayerNorm")
NONLINEARITIES = ("ReLU", "LeakyReLU", "GELU", "SiLU")  # torch.nn class names
# net.type values that build a FlexNet / FlexTCN from the conv/kernel/mask sections; the other
# registered models (CIFARResNet32, ...) are fixed baselines that ignore them.
CK_NET_TYPES = ("ResNet", "TCN")
# SeparableFlexConv goes last so the existing messages ("CKConv, FlexConv, Conv, ...") keep their order.
CONV_TYPES = ("CKConv", "FlexConv", "Conv", "SRF", "SeparableFlexConv")
# Kernel sampled by a kernel net on a conv.horizon grid (kernel checks, cross-resolution, kernel-norm penalty).
CONTINUOUS_CONV_TYPES = ("CKConv", "FlexConv", "SeparableFlexConv")
# Gaussian mask + cropping (mask checks), and the layers the anti-aliasing penalty acts on.
MASKED_CONV_TYPES = ("FlexConv", "SeparableFlexConv")
SIREN_KERNEL_TYPES = ("SIREN", "nSIREN")
MFN_SPATIAL_KERNEL_TYPES = ("MAGNet", "Gabor")  # kernel nets with Gaussian envelopes and an input scale
# The anti-aliasing regulariser reads the MFN filter parameters, which only these have.
REGULARIZABLE_KERNEL_TYPES = MFN_SPATIAL_KERNEL_TYPES
KERNEL_BIAS_INITS = (None, "None", "zero", "uniform")
MASK_TYPES = ("gaussian",)
# train.compile: False, or a torch.compile backend (True = inductor, the default backend).
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop")
SCHEDULERS = ("none", "cosine", "multistep", "plateau", "exponential")
INTERPOLATIONS = ("bilinear", "nearest")
PROFILE_MODES = ("bench", "profile")
PROFILE_DATA_MODES = ("fake", "dataset")
ENTRIES = ("run_experiment", "run_crossres", "run_profiler")


# --- values owned by registries ---------------------------------------------------------------------
def model_names() -> tuple[str, ...]:
    from models import list_models

    return tuple(list_models())


def dataset_names() -> tuple[str, ...]:
    from datasets import list_datasets

    return tuple(list_datasets())


def kernel_types() -> tuple[str, ...]:
    from ckconv.nn.kernelnets import KERNEL_TYPES

    return tuple(KERNEL_TYPES)


def regularizer_targets() -> tuple[str, ...]:
    from ckconv.nn.regularizers import TARGETS

    return TARGETS


def regularizer_functions() -> tuple[str, ...]:
    from ckconv.nn.regularizers import FUNCTIONS

    return FUNCTIONS


def regularizer_methods() -> tuple[str, ...]:
    from ckconv.nn.regularizers import METHODS

    return METHODS


# --- spellings -----------------------------------------------------------------------------------
def parse_scheduler(name: str) -> str:
    """``train.scheduler``: "", "none" and "None" all mean no scheduler (the original's default was "")."""
    return "none" if str(name).strip().lower() in ("", "none") else str(name)


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
