"""timm-style model registry keyed by the ``net.type`` values.

A builder is any callable ``(spec: ModelSpec, data_dim, in_channels, num_classes) -> nn.Module``; register it
with ``@register_model("Name")``. The registered names are the allowed values of ``net.type``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Union

from torch import nn

from .spec import ModelSpec

Builder = Callable[[ModelSpec, int, int, int], nn.Module]
_REGISTRY: dict[str, Builder] = {}
# Models that can output at every time step (``build_model(..., per_step=True)``: the builder takes ``per_step``).
_PER_STEP: set[str] = set()


def register_model(name: str, *, per_step: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder`` available as ``net.type=<name>``. Names must be unique. ``per_step``: the builder
    also takes ``per_step=True`` and then outputs ``[B, num_classes, L]``, one prediction per time step."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        if per_step:
            _PER_STEP.add(name)
        return builder

    return wrap


def list_models() -> list[str]:
    """Registered ``net.type`` names, sorted."""
    return sorted(_REGISTRY)


def build_model(spec: Union[ModelSpec, Mapping[str, Any]], data_dim: int, in_channels: int,
                num_classes: int, *, per_step: bool = False) -> nn.Module:
    """Build the network named by ``spec.net.type``.

    Args:
        spec: a :class:`ModelSpec`, or nested mappings of its fields, e.g. ``{"net": {"type": "TCN",
            "no_hidden": 30}}`` (fields left out keep the spec's defaults; an unknown one is a ``ValueError``).
        data_dim: 1 for sequences ``[B, C, L]``, 2 for images ``[B, C, H, W]``.
        in_channels: input channels of the data.
        num_classes: number of output logits (outputs: 1 for a regression).
        per_step: an output at every time step, ``[B, num_classes, L]`` (the copy-memory task), instead of one
            per sequence; only for models registered with ``per_step=True`` (``TCN``).
    Returns:
        a ``nn.Module`` mapping inputs to logits ``[B, num_classes]`` (``[B, num_classes, L]`` with ``per_step``).

    Example::

        >>> model = build_model({"net": {"type": "TCN", "no_hidden": 8, "no_blocks": 2}}, 1, 1, 10)
        >>> model(torch.randn(4, 1, 40)).shape
        torch.Size([4, 10])
    """
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.from_dict(spec)
    name = spec.net.type
    if name not in _REGISTRY:
        raise ValueError(f"unknown net.type={name!r}; registered models: {', '.join(list_models())}")
    if data_dim not in (1, 2):
        raise ValueError(f"data_dim must be 1 (sequences) or 2 (images), got {data_dim!r}")
    if per_step:
        if name not in _PER_STEP:
            raise ValueError(f"net.type={name} has no output at every time step (a per-step task); models that "
                             f"have one: {', '.join(sorted(_PER_STEP))}")
        return _REGISTRY[name](spec, int(data_dim), int(in_channels), int(num_classes), per_step=True)
    return _REGISTRY[name](spec, int(data_dim), int(in_channels), int(num_classes))
