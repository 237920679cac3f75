"""CIFAR ResNet-20/32/44/56/110 baselines (He et al. 2016, section 4.2).

3x3 conv 16 + BN + ReLU, three stages of ``n`` basic blocks with 16/32/64 channels (stride 2 at
the first block of stages 2 and 3), global average pool, ``Linear(64, num_classes)``.
Depth = 6n + 2. Shortcuts are option A: parameter-free (stride-2 subsampling and zero channel
padding), so e.g. ResNet-32 has 464,154 parameters on CIFAR-10.
These baselines ignore the ``conv`` / ``kernel`` / ``mask`` config sections.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model
from .spec import ModelSpec

DEPTHS = (20, 32, 44, 56, 110)


class ShortcutA(nn.Module):
    """Option-A shortcut: ``[B, C, H, W] -> [B, C + 2 pad, ceil(H/2), ceil(W/2)]``, no parameters."""

    def __init__(self, pad_channels: int):
        super().__init__()
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.pad_channels, self.pad_channels))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU. ``[B, C_in, H, W] -> [B, C_out, H/s, W/s]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            # Every stage doubles the width, so pad half the difference on each side.
            self.shortcut: nn.Module = ShortcutA((out_channels - in_channels) // 2)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class CIFARResNet(nn.Module):
    """``x: [B, in_channels, H, W]`` -> logits ``[B, num_classes]``; depth 6n+2."""

    def __init__(self, depth: int, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, width = [], 16
        for stage, out_width in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                layers.append(BasicBlock(width, out_width, stride))
                width = out_width
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # He init (fan-in, gain sqrt 2); biases keep torch's default, as in the original.
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layers(h)                           # [B, 64, H/4, W/4]
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)   # [B, 64]
        return self.linear(h)


def _register(depth: int) -> None:
    @register_model(f"CIFARResNet{depth}")
    def build(spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int) -> nn.Module:
        if data_dim != 2:
            raise ValueError(f"net.type=CIFARResNet{depth} is an image model (data_dim=2), "
                             f"got data_dim={data_dim}")
        return CIFARResNet(depth, in_channels, num_classes)

    build.__doc__ = f"CIFAR ResNet-{depth} (He et al., option-A shortcuts)."


for _depth in DEPTHS:
    _register(_depth)
