"""Parameter tags for optimiser groups.

Layers declare which of their parameters need their own learning rate in a class attribute
``_param_tags = {"<parameter attribute>": "<tag>"}`` (FlexConv: ``mask_params -> "mask"``; SIREN layers:
``omega_0 -> "omega_0"``). The optimiser builder groups by tag; no parameter-name matching.
"""
from __future__ import annotations

from torch import nn


def group_parameters_by_tag(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters of ``model`` grouped by tag: ``{"default": [...], "mask": [...], ...}``.

    Order inside each group follows ``model.parameters()`` (deterministic, unlike the original's sets).
    """
    tag_of: dict[int, str] = {}
    for module in model.modules():
        for attribute, tag in getattr(type(module), "_param_tags", {}).items():
            parameter = module._parameters.get(attribute)
            if parameter is not None:
                tag_of[id(parameter)] = tag
    groups: dict[str, list[nn.Parameter]] = {"default": []}
    for parameter in model.parameters():
        if parameter.requires_grad:
            groups.setdefault(tag_of.get(id(parameter), "default"), []).append(parameter)
    return groups
