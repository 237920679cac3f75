"""ckconv: continuous kernel convolutions with learnable kernel sizes (FlexConv, ICLR 2022), its
depthwise-separable variant (SeparableFlexConv), CKConv and the N-Jet (SRF) baseline. Depends on torch
only; the layers are used like ``torch.nn.Conv2d``::

    from ckconv import FlexConv
    conv = FlexConv(in_channels=3, out_channels=16, data_dim=2, horizon=33)
    y = conv(torch.randn(8, 3, 32, 32))   # [8, 16, 32, 32]

``flexify(model)`` turns the convolutions of an existing network into FlexConv layers and
``param_groups(model, lr)`` gives the optimiser groups (mask parameters at a lower learning rate).
The public API, one section per name: docs/LAYERS.md.
"""
from .convert import flexify, flexify_plan
from .nn import (CKConv, FlexConv, FourierNet, GaborNet, MAGNet, MLP, SIREN, SeparableFlexConv, SRFConv,
                 anti_aliasing_penalty, group_parameters_by_tag, kernel_norm_penalty, param_groups)

__version__ = "0.3.0"

__all__ = ["CKConv", "FlexConv", "SeparableFlexConv", "SRFConv", "MAGNet", "GaborNet", "FourierNet", "SIREN",
           "MLP", "kernel_norm_penalty", "anti_aliasing_penalty", "group_parameters_by_tag", "param_groups",
           "flexify", "flexify_plan"]
