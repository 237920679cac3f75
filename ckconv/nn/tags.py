"""Parameter tags for optimiser groups.

Layers declare which of their parameters need their own learning rate in a class attribute
``_param_tags = {"<parameter attribute>": "<tag>"}`` (FlexConv: ``mask_params -> "mask"``; SIREN layers:
``omega_0 -> "omega_0"``). The optimiser builder groups by tag; no parameter-name matching.
"""
from __future__ import annotations

from torch import nn


def group_parameters_by_tag(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters of ``model`` grouped by tag: ``{"default": [...], "mask": [...], ...}``.

    Args:
        model: any module; FlexConv/SeparableFlexConv ``mask_params`` go to ``"mask"``, learnable SIREN
            ``omega_0`` to ``"omega_0"``, every other parameter with ``requires_grad`` to ``"default"``.

    Returns a dict tag -> list of parameters (``"default"`` always present, possibly empty; other tags only
    when such a parameter exists). Order inside each group follows ``model.parameters()`` (deterministic,
    unlike the original's sets). :func:`param_groups` turns it into optimiser groups.

    Example::

        model = torch.nn.Sequential(FlexConv(3, 8, data_dim=2, horizon=33), torch.nn.ReLU())
        groups = group_parameters_by_tag(model)
        groups["mask"]          # [model[0].mask_params]
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


def param_groups(model: nn.Module, lr: float, *, mask_lr_factor: float = 0.1,
                 omega_0_lr_factor: float = 1.0) -> list[dict]:
    """Optimiser parameter groups of ``model``: one dict per non-empty tag of :func:`group_parameters_by_tag`.

    Args:
        model: the module to optimise.
        lr: base learning rate (the ``"default"`` group).
        mask_lr_factor: FlexConv mask parameters get ``lr * mask_lr_factor`` (0.1: the framework's default,
            ``train.mask_params_lr_factor``).
        omega_0_lr_factor: learnable SIREN ``omega_0`` get ``lr * omega_0_lr_factor``.

    Returns ``[{"params": [...], "lr": ..., "name": tag}, ...]`` in the order default, mask, omega_0 (empty
    groups left out), ready for any ``torch.optim`` optimiser; ``name`` is kept in ``optimizer.param_groups``.

    Example::

        model = torch.nn.Sequential(FlexConv(3, 8, data_dim=2, horizon=33), torch.nn.ReLU())
        optimizer = torch.optim.Adam(param_groups(model, lr=1e-3))
        [(g["name"], g["lr"]) for g in optimizer.param_groups]   # [("default", 1e-3), ("mask", 1e-4)]
    """
    factors = {"default": 1.0, "mask": mask_lr_factor, "omega_0": omega_0_lr_factor}
    return [{"params": params, "lr": lr * factors.get(tag, 1.0), "name": tag}
            for tag, params in group_parameters_by_tag(model).items() if params]
