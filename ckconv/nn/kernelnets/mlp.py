"""Plain MLP kernel net: ``Linear + Norm + Act`` blocks, then an output linear."""
from __future__ import annotations

import torch
from torch import nn

from .common import KernelNet

ACTIVATIONS = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "Swish": nn.SiLU}
NORMS = ("", "BatchNorm", "LayerNorm")


class _GroupNormOverPoints(nn.Module):
    """The original's "LayerNorm" (GroupNorm with one group) on a ``[1, H, n...]`` kernel-net activation:
    statistics over all hidden units AND all grid points, affine per hidden unit."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, hidden, eps=1e-12)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: [P, H]
        return self.norm(z.t().unsqueeze(0)).squeeze(0).t()


class MLP(KernelNet):
    """Plain MLP kernel net: ``no_layers - 1`` blocks ``Linear -> norm -> activation``, then an output linear.

    Args:
        data_dim, out_features: position dimension ``D`` and kernel values per position.
        hidden, no_layers: width and number of linears (>= 2).
        norm: ``""``, ``"BatchNorm"`` or ``"LayerNorm"`` (over all hidden units and positions).
        activation: ``"ReLU"``, ``"LeakyReLU"`` or ``"Swish"``.
        bias: linear biases (initialised to 0). weight_norm: weight normalisation of every linear.

    Shapes: positions ``[P, D]`` -> ``[P, out_features]``.

    Example::

        net = MLP(data_dim=2, out_features=6, hidden=32, no_layers=3, activation="ReLU")
        net(torch.rand(10, 2) * 2 - 1).shape     # [10, 6]
    """

    def __init__(self, data_dim: int, out_features: int, hidden: int = 32, no_layers: int = 3, *,
                 norm: str = "", activation: str = "ReLU", bias: bool = True, weight_norm: bool = False):
        super().__init__()
        if no_layers < 2:
            raise ValueError(f"MLP kernel nets need no_layers >= 2, got {no_layers}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"kernel activation={activation!r} is not valid; allowed: {', '.join(ACTIVATIONS)}")
        if norm not in NORMS:
            raise ValueError(f"kernel norm={norm!r} is not valid; allowed: {', '.join(repr(n) for n in NORMS)}")
        self.data_dim, self.out_features = data_dim, out_features
        widths = [data_dim] + [hidden] * (no_layers - 1)
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers.append(self._linear(fan_in, fan_out, bias, weight_norm))
            if norm == "BatchNorm":
                layers.append(nn.BatchNorm1d(fan_out))
            elif norm == "LayerNorm":
                layers.append(_GroupNormOverPoints(fan_out))
            layers.append(ACTIVATIONS[activation]())
        layers.append(self._linear(hidden, out_features, bias, weight_norm))
        self.body = nn.Sequential(*layers)

    @staticmethod
    def _linear(fan_in: int, fan_out: int, bias: bool, weight_norm: bool) -> nn.Module:
        linear = nn.Linear(fan_in, fan_out, bias=bias)
        if bias:
            nn.init.zeros_(linear.bias)
        return nn.utils.parametrizations.weight_norm(linear, dim=0) if weight_norm else linear

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.body(points)
