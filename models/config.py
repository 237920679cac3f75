"""Reading the model-related config sections with the original key names.

The engine hands us an OmegaConf ``DictConfig`` (or any namespace / dict) with the sections
``net``, ``conv``, ``kernel`` and ``mask`` of the original ``cfg/config.yaml`` (spec section 13).
Every read goes through :func:`get` so that a missing *optional* key falls back to the original
default in one place, and a missing or unset *required* key fails with a message naming it
(instead of an ``AttributeError`` deep inside a layer constructor).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Sentinel for "this key has no sensible default: the user must set it".
REQUIRED = object()

# Defaults of the original config (spec section 13). Keys whose original default is a
# placeholder that cannot work (net.no_hidden=-1, conv.type="", ...) are REQUIRED instead.
DEFAULTS: dict[str, Any] = {
    "net.type": REQUIRED,
    "net.no_hidden": REQUIRED,
    "net.no_blocks": REQUIRED,
    "net.dropout": 0.0,
    "net.norm": REQUIRED,
    "net.nonlinearity": "ReLU",
    "net.block_width_factors": [0.0],
    "conv.type": REQUIRED,
    "conv.horizon": "same",
    "conv.use_fft": False,
    "conv.bias": True,
    "conv.padding": "same",
    "conv.stride": 1,
    "kernel.type": REQUIRED,
    "kernel.no_hidden": REQUIRED,
    "kernel.no_layers": REQUIRED,
    "kernel.input_scale": 25.6,
    "kernel.omega_0": 0.0,
    "kernel.learn_omega_0": False,
    "kernel.weight_norm": False,
    "kernel.steerable": False,
    "kernel.init_spatial_value": 1.0,
    "kernel.bias_init": "None",
    "kernel.norm": "",
    "kernel.activ_function": "",
    "kernel.sampling_rate_norm": 1.0,
    "kernel.srf.scale": 0.0,
    "mask.use": True,
    "mask.type": "",
    "mask.init_value": 0.0,
    "mask.threshold": 0.1,
    "mask.dynamic_cropping": True,
    "mask.temperature": 0.0,
}

# Placeholder values of the original config that mean "not set" for required keys.
_UNSET = ("", -1, None)


def _child(node: Any, key: str) -> tuple[bool, Any]:
    """Return ``(found, value)`` for one level of a dict / DictConfig / namespace."""
    if node is None:
        return False, None
    if isinstance(node, Mapping):  # dict and OmegaConf DictConfig
        return (True, node[key]) if key in node else (False, None)
    if hasattr(node, key):
        return True, getattr(node, key)
    return False, None


def get(cfg: Any, path: str, default: Any = None) -> Any:
    """Read ``cfg.<path>`` (dotted, e.g. ``"kernel.srf.scale"``) with the spec default.

    ``default`` overrides the table above (used for keys not in it). Raises ``ValueError`` naming
    the key when a required key is missing or still holds the original placeholder ("" / -1).
    """
    node, found = cfg, True
    for part in path.split("."):
        found, node = _child(node, part)
        if not found:
            break
    fallback = DEFAULTS.get(path, default)
    if not found:
        if fallback is REQUIRED:
            raise ValueError(f"config key '{path}' is required to build this model but is missing")
        return _plain(fallback)
    if fallback is REQUIRED and _is_unset(node):
        raise ValueError(f"config key '{path}' is required to build this model but is unset ({node!r})")
    return _plain(node)


def _is_unset(value: Any) -> bool:
    return isinstance(value, (str, int, type(None))) and not isinstance(value, bool) and value in _UNSET


def _plain(value: Any) -> Any:
    """ListConfig / tuples -> list so that callers can use ordinary Python operations."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def parse_horizon(value: Any) -> int | str:
    """``conv.horizon`` as ``int`` or one of ``"same"`` / ``"full"``.

    Hydra command lines deliver ``conv.horizon=33`` as an int but YAML or string overrides may give
    ``"33"``; both mean a 33-point kernel grid.
    """
    if isinstance(value, bool):
        raise ValueError(f"conv.horizon must be an int, 'same' or 'full', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text in ("same", "full"):
            return text
        try:
            return int(text)
        except ValueError:
            pass
    raise ValueError(f"conv.horizon must be an int, 'same' or 'full', got {value!r}")


def parse_bias_init(value: Any) -> str | None:
    """``kernel.bias_init``: the original default is the STRING "None" = torch-default init."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none")):
        return None
    return value
