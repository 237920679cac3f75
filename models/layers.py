"""Config -> layer factories shared by every network family.

One place decides what ``conv.type``, ``net.norm`` and ``net.nonlinearity`` mean, so FlexNet,
the 1D ResNet and the TCN cannot drift apart.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ckconv import CKConv, FlexConv, SeparableFlexConv, SRFConv

from config.choices import CONTINUOUS_CONV_TYPES, CONV_TYPES, NET_NORMS, NONLINEARITIES, parse_bias_init


class CausalConv1d(nn.Conv1d):
    """Discrete causal 1D convolution: ``[B, C_in, L] -> [B, C_out, L]``.

    Left-pads the input with ``k - 1`` zeros so that output ``t`` only sees inputs ``<= t`` and the
    last kernel tap multiplies the current step (the orientation of the continuous causal convs).
    Same parameters (and count) as ``nn.Conv1d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


def conv_type(cfg: Any) -> str:
    """``conv.type`` checked against the known types."""
    name = cfg.conv.type
    if name not in CONV_TYPES:
        raise ValueError(f"unknown conv.type={name!r}; allowed: {', '.join(CONV_TYPES)}")
    return name


def make_conv(cfg: Any, in_channels: int, out_channels: int, data_dim: int) -> nn.Module:
    """Build the ``conv.type`` layer mapping ``[B, in, *S] -> [B, out, *S]`` (same size).

    * ``FlexConv`` / ``CKConv``: continuous-kernel layers from ``ckconv`` (causal in 1D);
    * ``SeparableFlexConv``: FlexConv with one kernel per input channel and a 1x1 channel mix, built
      from the same keys as FlexConv;
    * ``Conv``: plain ``torch.nn.Conv{D}d`` with ``kernel_size=int(conv.horizon)`` and "same"
      padding in 2D, causal left padding in 1D;
    * ``SRF``: N-Jet layer (2D only), order 4, init_k 2, init scale 0 as in the original.
    """
    kind = conv_type(cfg)
    if data_dim not in (1, 2):
        raise ValueError(f"data_dim must be 1 or 2, got {data_dim!r}")
    if kind in CONTINUOUS_CONV_TYPES:
        return _make_ck_conv(cfg, kind, in_channels, out_channels, data_dim)
    if kind == "Conv":
        return _make_plain_conv(cfg, in_channels, out_channels, data_dim)
    # kind == "SRF"
    if data_dim != 2:
        raise ValueError("conv.type=SRF (N-Jet) is only available for 2D data (images); "
                         "use FlexConv, CKConv or Conv for sequences")
    return SRFConv(in_channels, out_channels, data_dim=2, order=4, init_k=2.0, init_scale=0.0,
                   scale_sigma=float(cfg.kernel.srf.scale))


def _make_ck_conv(cfg: Any, kind: str, in_channels: int, out_channels: int, data_dim: int) -> nn.Module:
    kwargs = dict(
        kernel_type=cfg.kernel.type,
        kernel_no_hidden=int(cfg.kernel.no_hidden),
        kernel_no_layers=int(cfg.kernel.no_layers),
        kernel_input_scale=float(cfg.kernel.input_scale),
        kernel_omega_0=float(cfg.kernel.omega_0),
        kernel_learn_omega_0=bool(cfg.kernel.learn_omega_0),
        kernel_weight_norm=bool(cfg.kernel.weight_norm),
        kernel_steerable=bool(cfg.kernel.steerable),
        kernel_init_spatial_value=float(cfg.kernel.init_spatial_value),
        kernel_bias_init=parse_bias_init(cfg.kernel.bias_init),
        kernel_norm=cfg.kernel.norm,
        kernel_activation=cfg.kernel.activ_function,
        sampling_rate_norm=float(cfg.kernel.sampling_rate_norm),
        bias=bool(cfg.conv.bias),
        use_fft=cfg.conv.use_fft,
    )
    horizon = cfg.conv.horizon  # the layer parses it ("33", 33, "same", "full")
    if kind == "CKConv":
        return CKConv(in_channels, out_channels, data_dim, horizon, **kwargs)
    layer_cls = SeparableFlexConv if kind == "SeparableFlexConv" else FlexConv
    return layer_cls(
        in_channels, out_channels, data_dim, horizon, **kwargs,
        mask_use=bool(cfg.mask.use),
        mask_type=cfg.mask.type,
        mask_init_value=float(cfg.mask.init_value),
        mask_threshold=float(cfg.mask.threshold),
        mask_dynamic_cropping=bool(cfg.mask.dynamic_cropping),
    )


def plain_kernel_size(horizon: Any) -> int:
    """``conv.horizon`` of ``conv.type=Conv``: the kernel size, a positive int ("3" from YAML means 3)."""
    if isinstance(horizon, str) and horizon.strip().isdigit():
        horizon = int(horizon)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"conv.type=Conv needs conv.horizon = the kernel size (a positive int), got {horizon!r}")
    return horizon


def _make_plain_conv(cfg: Any, in_channels: int, out_channels: int, data_dim: int) -> nn.Module:
    horizon = plain_kernel_size(cfg.conv.horizon)
    # The residual networks keep full resolution everywhere; anything else breaks the sums.
    padding, stride = cfg.conv.padding, cfg.conv.stride
    if padding != "same" or int(stride) != 1:
        raise ValueError(f"conv.type=Conv supports only conv.padding='same' and conv.stride=1 "
                         f"(full-resolution residual networks), got padding={padding!r}, stride={stride!r}")
    bias = bool(cfg.conv.bias)
    if data_dim == 1:
        return CausalConv1d(in_channels, out_channels, horizon, bias=bias)
    return nn.Conv2d(in_channels, out_channels, horizon, padding="same", bias=bias)


def make_norm(cfg: Any, channels: int, data_dim: int) -> nn.Module:
    """``net.norm``: BatchNorm{D}d, or LayerNorm = GroupNorm(1 group, eps 1e-12)."""
    name = cfg.net.norm
    if name == "BatchNorm":
        return (nn.BatchNorm1d if data_dim == 1 else nn.BatchNorm2d)(channels)
    if name == "LayerNorm":
        # One group = normalise over channels and positions together, like the original.
        return nn.GroupNorm(1, channels, eps=1e-12)
    raise ValueError(f"unknown net.norm={name!r}; allowed: {', '.join(NET_NORMS)}")


def nonlinearity(cfg: Any) -> Callable[[], nn.Module]:
    """``net.nonlinearity`` -> a module class (call it to get a fresh module). The allowed names are
    ``torch.nn`` class names; LeakyReLU keeps torch's default slope 0.01, as the original."""
    name = cfg.net.nonlinearity
    if name not in NONLINEARITIES:
        raise ValueError(f"unknown net.nonlinearity={name!r}; allowed: {', '.join(NONLINEARITIES)}")
    return getattr(nn, name)


def check_config(cfg: Any, data_dim: int) -> None:
    """Validate the names a residual network needs before building anything (fail fast)."""
    kind = conv_type(cfg)
    make_norm(cfg, 1, data_dim)
    nonlinearity(cfg)
    if kind == "SRF" and data_dim != 2:
        raise ValueError("conv.type=SRF (N-Jet) is only available for 2D data (images); "
                         "use FlexConv, CKConv or Conv for sequences")
