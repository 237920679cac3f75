"""Residual blocks of FlexNet / ResNet and of the TCN.

Both blocks have the same parts: two convs of the configured type, two norms over the output
width, element dropout, and a 1x1 conv shortcut (with bias, no norm) when the width changes.
They differ only in what happens after the second norm.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Dropout, make_conv, make_norm, nonlinearity
from .spec import ModelSpec


class _ResidualBlockBase(nn.Module):
    def __init__(self, spec: ModelSpec, in_channels: int, out_channels: int, data_dim: int):
        super().__init__()
        act = nonlinearity(spec)
        self.conv1 = make_conv(spec, in_channels, out_channels, data_dim)
        self.norm1 = make_norm(spec, out_channels, data_dim)
        self.act1 = act()
        self.dropout = Dropout(float(spec.net.dropout))
        self.conv2 = make_conv(spec, out_channels, out_channels, data_dim)
        self.norm2 = make_norm(spec, out_channels, data_dim)
        self.act2 = act()
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            conv = nn.Conv1d if data_dim == 1 else nn.Conv2d
            # 1x1 conv = per-position linear map; torch-default init, as in the original.
            self.shortcut = conv(in_channels, out_channels, kernel_size=1, bias=True)


class ResNetBlock(_ResidualBlockBase):
    """``y = act(norm2(conv2(drop(act(norm1(conv1(x)))))) + shortcut(x))``.

    ``x: [B, C_in, *S] -> y: [B, C_out, *S]`` (spatial size unchanged).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act1(self.norm1(self.conv1(x))))
        h = self.norm2(self.conv2(h))
        return self.act2(h + self.shortcut(x))


class TCNBlock(_ResidualBlockBase):
    """``y = act(drop(act(norm2(conv2(drop(act(norm1(conv1(x)))))))) + shortcut(x))``.

    The original TCN block applies an extra activation and dropout after the second norm, before
    the residual sum. ``x: [B, C_in, L] -> y: [B, C_out, L]`` (causal convs).
    """

    def __init__(self, spec: ModelSpec, in_channels: int, out_channels: int, data_dim: int = 1):
        super().__init__(spec, in_channels, out_channels, data_dim)
        self.act_out = nonlinearity(spec)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act1(self.norm1(self.conv1(x))))
        h = self.dropout(self.act2(self.norm2(self.conv2(h))))
        return self.act_out(h + self.shortcut(x))
