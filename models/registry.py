"""timm-style model registry keyed by the original ``net.type`` values.

A builder is any callable ``(cfg, data_dim, in_channels, num_classes) -> nn.Module``; register it
with ``@register_model("Name")``.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from config.schema import with_defaults

Builder = Callable[[Any, int, int, int], nn.Module]
_REGISTRY: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder`` available as ``net.type=<name>``. Names must be unique."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return wrap


def list_models() -> list[str]:
    """Registered ``net.type`` names, sorted."""
    return sorted(_REGISTRY)


def build_model(cfg: Any, data_dim: int, in_channels: int, num_classes: int) -> nn.Module:
    """Build the network named by ``cfg.net.type``.

    Args:
        cfg: the run's config (a DictConfig), or any part of it as a dict or DictConfig, e.g.
            ``{"net": {"type": "TCN", "no_hidden": 30}}``: keys it does not set take the schema's defaults
            (``config.schema``); a key the schema does not know is a ``ConfigError`` naming it.
        data_dim: 1 for sequences ``[B, C, L]``, 2 for images ``[B, C, H, W]``.
        in_channels: input channels of the data.
        num_classes: number of output logits.
    Returns:
        a ``nn.Module`` mapping inputs to logits ``[B, num_classes]``.
    """
    cfg = with_defaults(cfg)
    name = cfg.net.type
    if name not in _REGISTRY:
        raise ValueError(f"unknown net.type={name!r}; registered models: {', '.join(list_models())}")
    if data_dim not in (1, 2):
        raise ValueError(f"data_dim must be 1 (sequences) or 2 (images), got {data_dim!r}")
    return _REGISTRY[name](cfg, int(data_dim), int(in_channels), int(num_classes))
