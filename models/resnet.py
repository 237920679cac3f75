"""ImageNet-style ResNets (He et al. 2016, torchvision layout): the paper's STL-10 baselines (Table 9).

Registered as ``net.type=OriginalResnet10`` and ``OriginalResnet18`` (the original's names; its deeper variants
were never used in the paper and are left out). A 7x7 stride-2 conv
with 64 channels + BN + ReLU and a 3x3 stride-2 max pool, four stages of basic blocks with 64/128/256/512
channels (stride 2 at the first block of stages 2-4, a 1x1 conv + BN projection shortcut where the shape
changes), global average pool and ``Linear(512, num_classes)``. Blocks per stage: ResNet-10 [1, 1, 1, 1],
ResNet-18 [2, 2, 2, 2]. Convolutions are He-initialised (fan-out), BatchNorms start at weight 1, bias 0.

The layers and parameter names are torchvision's (``torchvision.models.resnet18(num_classes=10)`` has the same
11,181,642 parameters), e.g. on STL-10 (10 classes): ResNet-10 4,910,922 and ResNet-18 11,181,642.
These baselines ignore the ``conv`` / ``kernel`` / ``mask`` config sections.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model
from .spec import ModelSpec

LAYERS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2)}


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN + shortcut, ReLU. ``[B, C_in, H, W] -> [B, C, H/s, W/s]``."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = _projection(in_channels, channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + (x if self.downsample is None else self.downsample(x)))


class ImageNetResNet(nn.Module):
    """``x: [B, in_channels, H, W]`` -> logits ``[B, num_classes]`` (any H, W >= 1: the pool is adaptive)."""

    def __init__(self, depth: int, in_channels: int = 3, num_classes: int = 1000):
        super().__init__()
        if depth not in LAYERS:
            raise ValueError(f"ImageNet ResNet depth must be one of {sorted(LAYERS)}, got {depth}")
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        width = 64
        for index, (blocks, channels) in enumerate(zip(LAYERS[depth], (64, 128, 256, 512))):
            stride = 1 if index == 0 else 2
            stage = []
            for i in range(blocks):
                stage.append(BasicBlock(width, channels, stride if i == 0 else 1))
                width = channels
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.maxpool(self.relu(self.bn1(self.conv1(x))))          # [B, 64, H/4, W/4]
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))     # [B, 512, H/32, W/32]
        return self.fc(self.avgpool(h).flatten(1))


def _register(depth: int) -> None:
    @register_model(f"OriginalResnet{depth}")
    def build(spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int) -> nn.Module:
        if data_dim != 2:
            raise ValueError(f"net.type=OriginalResnet{depth} is an image model (data_dim=2), got data_dim={data_dim}")
        return ImageNetResNet(depth, in_channels, num_classes)

    build.__doc__ = f"ImageNet-style ResNet-{depth} (torchvision layout), the paper's STL-10 baseline."


for _depth in LAYERS:
    _register(_depth)
