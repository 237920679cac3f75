"""SIREN and nSIREN kernel nets.

``no_layers`` counts ALL linears: ``D -> H``, ``no_layers - 2`` hidden ``H -> H`` (each followed by a
sine) and a plain output linear ``H -> out_features``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm

from .common import KernelNet, init_bias, parse_bias_init


class SIRENLayer(nn.Module):
    """``sin(omega_0 * (W z + b))`` (SIREN) or ``sin(omega_0 * W z + b)`` (nSIREN).

    ``omega_0`` is a learnable scalar when ``learn_omega_0`` (tagged ``"omega_0"`` so optimisers can give
    it its own learning rate), else a buffer.
    """

    _param_tags = {"omega_0": "omega_0"}

    def __init__(self, linear: nn.Linear, omega_0: float, learn_omega_0: bool, scale_bias: bool):
        super().__init__()
        self.linear = linear
        self.scale_bias = scale_bias
        value = torch.tensor(float(omega_0))
        if learn_omega_0:
            self.omega_0 = nn.Parameter(value)
        else:
            self.register_buffer("omega_0", value)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.scale_bias or self.linear.bias is None:
            return torch.sin(self.omega_0 * self.linear(z))
        return torch.sin(self.omega_0 * nn.functional.linear(z, self.linear.weight) + self.linear.bias)


class SIREN(KernelNet):
    """SIREN kernel net (``variant="siren"``) or its nSIREN variant (``variant="nsiren"``).

    Init: first layer ``U(-1/D, 1/D)``; every later layer (output included)
    ``U(-sqrt(6/fan_in)/omega_0, +sqrt(6/fan_in)/omega_0)``. ``weight_norm`` wraps every linear in
    PyTorch's weight normalisation (dim 0) after init.

    Args:
        data_dim, out_features: position dimension ``D`` and kernel values per position.
        hidden, no_layers: width and number of ALL linears (>= 2).
        omega_0, learn_omega_0: sine frequency (> 0) and whether it is a parameter (tagged ``"omega_0"``).
        weight_norm, bias, bias_init: see above and :class:`MAGNet`. variant: ``"siren"`` or ``"nsiren"``.

    Shapes: positions ``[P, D]`` -> ``[P, out_features]``.

    Example::

        net = SIREN(data_dim=2, out_features=6, omega_0=30.0, learn_omega_0=True)
        net(torch.rand(10, 2) * 2 - 1).shape     # [10, 6]
    """

    def __init__(self, data_dim: int, out_features: int, hidden: int = 32, no_layers: int = 3, *,
                 omega_0: float = 30.0, learn_omega_0: bool = False, weight_norm: bool = False,
                 bias: bool = True, bias_init=None, variant: str = "siren"):
        super().__init__()
        if no_layers < 2:
            raise ValueError(f"SIREN kernel nets need no_layers >= 2 (input and output layer), got {no_layers}")
        if omega_0 <= 0:
            raise ValueError(f"SIREN omega_0 must be > 0 (e.g. 30.0), got {omega_0}")
        if variant not in ("siren", "nsiren"):
            raise ValueError(f"SIREN variant={variant!r} is not valid; allowed: 'siren', 'nsiren'")
        self.data_dim, self.out_features = data_dim, out_features
        bias_init = parse_bias_init(bias_init)
        widths = [data_dim] + [hidden] * (no_layers - 1) + [out_features]
        linears = [nn.Linear(i, o, bias=bias) for i, o in zip(widths[:-1], widths[1:])]
        with torch.no_grad():
            for index, linear in enumerate(linears):
                fan_in = linear.in_features
                bound = 1.0 / fan_in if index == 0 else math.sqrt(6.0 / fan_in) / omega_0
                linear.weight.uniform_(-bound, bound)
                init_bias(linear, bias_init)
        if weight_norm:
            linears = [apply_weight_norm(linear, dim=0) for linear in linears]
        self.layers = nn.ModuleList(
            SIRENLayer(linear, omega_0, learn_omega_0, scale_bias=(variant == "siren")) for linear in linears[:-1]
        )
        self.output_linear = linears[-1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        z = points
        for layer in self.layers:
            z = layer(z)
        return self.output_linear(z)
