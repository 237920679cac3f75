"""Multiplicative filter networks: MAGNet (the paper's kernel net), MFN-Gabor and MFN-Fourier.

``z_0 = g_0(x)``, ``z_l = g_l(x) * A_l(z_{l-1})`` for ``l = 1..L``, output ``A_out(z_L)``. The filters
``g_l`` are the only nonlinearity. ``no_layers = L`` counts the hidden linears, so there are ``L + 1``
filters.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import KernelNet, init_bias, parse_bias_init


class SineFilter(nn.Module):
    """``sin(W x + b)``; ``W`` = torch-default init times ``scale`` (Fourier filter, and the sine of MAGNet/Gabor)."""

    def __init__(self, data_dim: int, hidden: int, scale: float, bias: bool):
        super().__init__()
        self.linear = nn.Linear(data_dim, hidden, bias=bias)
        with torch.no_grad():
            self.linear.weight.mul_(scale)
            if bias:
                self.linear.bias.uniform_(-math.pi, math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.linear(x))


class GaussianSineFilter(SineFilter):
    """``exp(-1/2 sum_d (gamma_hd (x_d - mu_hd))^2) * sin(W x + b)`` (MAGNet and Gabor filter).

    ``gamma`` is ``[H, D]`` (anisotropic, MAGNet) or ``[H, 1]`` (isotropic, Gabor) and drawn from
    ``Gamma(concentration, rate)``. The sine weights are scaled by ``scale * gamma`` at init only (so the
    sine frequency starts matched to the envelope width); afterwards ``W`` and ``gamma`` are independent.
    Steerable (2D only): the offset ``x - mu`` is rotated by ``2 pi theta_h`` before the envelope.
    """

    def __init__(self, data_dim: int, hidden: int, scale: float, bias: bool, *, concentration: float,
                 rate: float, isotropic: bool, mu_center: float, mu_range: float, steerable: bool = False):
        super().__init__(data_dim, hidden, 1.0, bias)
        gamma_shape = (hidden, 1 if isotropic else data_dim)
        gamma = torch.distributions.Gamma(torch.tensor(float(concentration)), torch.tensor(float(rate)))
        self.gamma = nn.Parameter(gamma.sample(gamma_shape))
        self.mu = nn.Parameter(mu_center + mu_range * (2 * torch.rand(hidden, data_dim) - 1))
        with torch.no_grad():
            self.linear.weight.mul_(scale * self.gamma)
        self.theta = nn.Parameter(torch.rand(hidden)) if steerable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = x[:, None, :] - self.mu  # [P, H, D]
        if self.theta is not None:
            angle = 2 * math.pi * self.theta
            cos, sin = torch.cos(angle), torch.sin(angle)
            offset = torch.stack(
                (cos * offset[..., 0] + sin * offset[..., 1], -sin * offset[..., 0] + cos * offset[..., 1]), dim=-1
            )
        envelope = torch.exp(-0.5 * (self.gamma * offset).pow(2).sum(-1))
        return envelope * torch.sin(self.linear(x))


class MFNBase(KernelNet):
    """Shared MFN body: ``no_layers`` hidden linears ``H -> H`` and an output linear ``H -> out_features``."""

    def __init__(self, data_dim: int, out_features: int, hidden: int, no_layers: int, filters: list[nn.Module],
                 bias: bool = True, bias_init=None, weight_scale: float = 1.0):
        super().__init__()
        if no_layers < 1:
            raise ValueError(f"MFN kernel nets need no_layers >= 1, got {no_layers}")
        self.data_dim, self.out_features = data_dim, out_features
        bias_init = parse_bias_init(bias_init)
        self.filters = nn.ModuleList(filters)
        self.linears = nn.ModuleList(nn.Linear(hidden, hidden, bias=bias) for _ in range(no_layers))
        bound = math.sqrt(weight_scale / hidden)
        for linear in self.linears:
            nn.init.uniform_(linear.weight, -bound, bound)
            init_bias(linear, bias_init)
        self.output_linear = nn.Linear(hidden, out_features, bias=bias)
        init_bias(self.output_linear, bias_init)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        z = self.filters[0](points)
        for filt, linear in zip(self.filters[1:], self.linears):
            z = filt(points) * linear(z)
        return self.output_linear(z)


class MAGNet(MFNBase):
    """Multiplicative Anisotropic Gabor Network (the paper's kernel net).

    Filter ``l`` has anisotropic ``gamma ~ Gamma(alpha / (l + 1), beta)`` per hidden unit and input
    dimension, centres ``mu ~ mu_center + init_spatial_value * U(-1, 1)`` and sine weights scaled by
    ``input_scale / sqrt(L + 1) * gamma``.

    Args:
        data_dim: ``D``, the dimension of the positions (1 or 2).
        out_features: number of kernel values per position (``C_out * C_in`` inside a CKConv/FlexConv).
        hidden, no_layers: width ``H`` and number ``L`` of hidden linears (``L + 1`` Gabor filters).
        input_scale: frequency scale of the sines. init_spatial_value, init_spatial_center: range and centre
            of the envelope centres ``mu``. alpha, beta: Gamma prior of the envelope widths.
        steerable: rotate each envelope by a learned angle (2D only). bias: biases of every linear/filter.
        bias_init: None (torch default), ``"zero"`` or ``"uniform"`` for the hidden and output linears.

    Shapes: positions ``[P, D]`` in ``[-1, 1]^D`` -> ``[P, out_features]``.

    Example::

        net = MAGNet(data_dim=2, out_features=6, hidden=32, no_layers=3)
        points = ckconv.nn.cartesian_points([ckconv.nn.coordinates(5)] * 2)   # [25, 2]
        net(points).shape                                                      # [25, 6]
    """

    def __init__(self, data_dim: int, out_features: int, hidden: int = 32, no_layers: int = 3, *,
                 input_scale: float = 25.6, init_spatial_value: float = 1.0, init_spatial_center: float = 0.0,
                 alpha: float = 6.0, beta: float = 1.0, steerable: bool = False, bias: bool = True, bias_init=None):
        if steerable and data_dim != 2:
            raise ValueError(f"steerable MAGNet needs data_dim=2, got data_dim={data_dim}")
        scale = input_scale / math.sqrt(no_layers + 1)
        filters = [
            GaussianSineFilter(data_dim, hidden, scale, bias, concentration=alpha / (layer + 1), rate=beta,
                               isotropic=False, mu_center=init_spatial_center, mu_range=init_spatial_value,
                               steerable=steerable)
            for layer in range(no_layers + 1)
        ]
        super().__init__(data_dim, out_features, hidden, no_layers, filters, bias, bias_init)


class GaborNet(MFNBase):
    """MFN-Gabor: isotropic ``gamma ~ Gamma(alpha / (L + 1), beta)`` in every filter.

    Args: those of :class:`MAGNet` except ``steerable`` (one envelope width per hidden unit, not per dimension).
    Shapes: positions ``[P, D]`` -> ``[P, out_features]``.

    Example::

        net = GaborNet(data_dim=1, out_features=4)
        net(ckconv.nn.coordinates(9)[:, None]).shape     # [9, 4]
    """

    def __init__(self, data_dim: int, out_features: int, hidden: int = 32, no_layers: int = 3, *,
                 input_scale: float = 25.6, init_spatial_value: float = 1.0, init_spatial_center: float = 0.0,
                 alpha: float = 6.0, beta: float = 1.0, bias: bool = True, bias_init=None):
        scale = input_scale / math.sqrt(no_layers + 1)
        filters = [
            GaussianSineFilter(data_dim, hidden, scale, bias, concentration=alpha / (no_layers + 1), rate=beta,
                               isotropic=True, mu_center=init_spatial_center, mu_range=init_spatial_value)
            for _ in range(no_layers + 1)
        ]
        super().__init__(data_dim, out_features, hidden, no_layers, filters, bias, bias_init)


class FourierNet(MFNBase):
    """MFN-Fourier: sine filters scaled by ``input_scale / sqrt(L + 1)``.

    Unlike the original (which always used 256), ``input_scale`` is honoured.

    Args: ``data_dim``, ``out_features``, ``hidden``, ``no_layers``, ``input_scale``, ``bias``, ``bias_init`` as in
    :class:`MAGNet` (no envelopes). Shapes: positions ``[P, D]`` -> ``[P, out_features]``.

    Example::

        net = FourierNet(data_dim=2, out_features=6, input_scale=25.6)
        net(torch.rand(10, 2) * 2 - 1).shape     # [10, 6]
    """

    def __init__(self, data_dim: int, out_features: int, hidden: int = 32, no_layers: int = 3, *,
                 input_scale: float = 25.6, bias: bool = True, bias_init=None):
        scale = input_scale / math.sqrt(no_layers + 1)
        filters = [SineFilter(data_dim, hidden, scale, bias) for _ in range(no_layers + 1)]
        super().__init__(data_dim, out_features, hidden, no_layers, filters, bias, bias_init)
