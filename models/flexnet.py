"""FlexNet: the residual network of the paper (original ``Img_ResNet`` / ``SeqData_ResNet``).

Registered as ``net.type=ResNet``:
stem conv (same conv type as the blocks) + norm + act, ``net.no_blocks`` residual blocks at full
resolution (no pooling or striding anywhere), then a readout:

* 2D (images): global average pool -> 1x1 conv ``final_width -> num_classes``;
* 1D (sequences, the original ``SeqData_ResNet``): the same 1x1 conv applied to the LAST time
  step only (the convs are causal, so the last step has seen the whole sequence).
  Not used for paper results (those use ``net.type=TCN``); kept because the original supports it.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ResNetBlock
from .layers import check_spec, make_conv, make_norm, nonlinearity
from .registry import register_model
from .spec import ModelSpec
from .widths import block_widths


class FlexNet(nn.Module):
    """``x: [B, in_channels, H, W]`` (or ``[B, in_channels, L]`` in 1D) -> logits ``[B, num_classes]``."""

    def __init__(self, spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int):
        super().__init__()
        if data_dim not in (1, 2):
            raise ValueError(f"net.type=ResNet supports data_dim 1 or 2, got {data_dim!r}")
        check_spec(spec, data_dim)
        self.data_dim = data_dim
        hidden = int(spec.net.no_hidden)
        widths = block_widths(hidden, spec.net.block_width_factors,
                              int(spec.net.no_blocks))

        self.stem = nn.Sequential(
            make_conv(spec, in_channels, hidden, data_dim),
            make_norm(spec, hidden, data_dim),
            # The original 1D variant hard-codes ReLU in the stem; the 2D one uses net.nonlinearity.
            nn.ReLU() if data_dim == 1 else nonlinearity(spec)(),
        )
        self.blocks = nn.Sequential(*[
            ResNetBlock(spec, c_in, c_out, data_dim)
            for c_in, c_out in zip([hidden] + widths[:-1], widths)
        ])
        conv = nn.Conv1d if data_dim == 1 else nn.Conv2d
        self.out_layer = conv(widths[-1], num_classes, kernel_size=1, bias=True)
        nn.init.kaiming_normal_(self.out_layer.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.out_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))                       # [B, C_final, *S]
        if self.data_dim == 2:
            h = torch.nn.functional.adaptive_avg_pool2d(h, 1)  # [B, C_final, 1, 1]
        else:
            h = h[:, :, -1:]                                # [B, C_final, 1]: last time step
        # flatten(1) instead of the original squeeze(): keeps the batch dim when B == 1.
        return self.out_layer(h).flatten(1)                 # [B, num_classes]


@register_model("ResNet")
def resnet(spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int) -> nn.Module:
    """FlexNet (2D) or its 1D sequence variant; the conv type comes from ``conv.type``."""
    return FlexNet(spec, data_dim, in_channels, num_classes)
