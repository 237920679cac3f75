"""Kernel networks: continuous functions from relative positions to kernel values.

``build_kernel_net(kernel_type, data_dim, out_features, ...)`` selects one by the config name
(``kernel.type``); every net maps points ``[P, D]`` to ``[P, out_features]``.
"""
from __future__ import annotations

from .common import KernelNet
from .mfn import FourierNet, GaborNet, MAGNet, MFNBase
from .mlp import MLP
from .siren import SIREN, SIRENLayer

KERNEL_TYPES = ("MAGNet", "Gabor", "Fourier", "SIREN", "nSIREN", "MLP")
SIREN_TYPES = ("SIREN", "nSIREN")      # sine layers with a frequency omega_0
MFN_SPATIAL_TYPES = ("MAGNet", "Gabor")  # Gaussian envelopes and an input scale; the anti-aliasing penalty reads them


def build_kernel_net(kernel_type: str, data_dim: int, out_features: int, *, hidden: int = 32, no_layers: int = 3,
                     input_scale: float = 25.6, omega_0: float = 30.0, learn_omega_0: bool = False,
                     weight_norm: bool = False, steerable: bool = False, init_spatial_value: float = 1.0,
                     init_spatial_center: float = 0.0, bias_init=None, norm: str = "",
                     activation: str = "ReLU", bias: bool = True) -> KernelNet:
    """Build the kernel net named ``kernel_type`` (one of ``KERNEL_TYPES``).

    Args: ``kernel_type`` (``MAGNet``, ``Gabor``, ``Fourier``, ``SIREN``, ``nSIREN``, ``MLP``), ``data_dim``,
    ``out_features`` and the keywords of the chosen net (those a net does not take are ignored).
    Returns a :class:`KernelNet` mapping positions ``[P, data_dim]`` to ``[P, out_features]``.

    Example::

        net = build_kernel_net("MAGNet", data_dim=2, out_features=6, hidden=16)   # a MAGNet
        net(torch.zeros(1, 2)).shape                                               # [1, 6]
    """
    common = dict(hidden=hidden, no_layers=no_layers, bias=bias)
    spatial = dict(input_scale=input_scale, init_spatial_value=init_spatial_value,
                   init_spatial_center=init_spatial_center, bias_init=bias_init)
    if kernel_type == "MAGNet":
        return MAGNet(data_dim, out_features, steerable=steerable, **common, **spatial)
    if kernel_type == "Gabor":
        return GaborNet(data_dim, out_features, **common, **spatial)
    if kernel_type == "Fourier":
        return FourierNet(data_dim, out_features, input_scale=input_scale, bias_init=bias_init, **common)
    if kernel_type in ("SIREN", "nSIREN"):
        return SIREN(data_dim, out_features, omega_0=omega_0, learn_omega_0=learn_omega_0, weight_norm=weight_norm,
                     bias_init=bias_init, variant=kernel_type.lower(), **common)
    if kernel_type == "MLP":
        return MLP(data_dim, out_features, norm=norm, activation=activation, weight_norm=weight_norm, **common)
    raise ValueError(f"kernel type {kernel_type!r} is not valid; allowed: {', '.join(KERNEL_TYPES)}")


__all__ = ["KERNEL_TYPES", "MFN_SPATIAL_TYPES", "SIREN_TYPES", "build_kernel_net", "KernelNet", "MFNBase", "MAGNet", "GaborNet", "FourierNet",
           "SIREN", "SIRENLayer", "MLP"]
