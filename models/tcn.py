"""FlexTCN / CKTCN: causal residual network for sequences (original ``SeqData_TCN``).

Registered as ``net.type=TCN`` (1D only). No stem: block 0 maps ``in_channels -> int(C f_0)``.
Readout: ``Linear(final_width, num_classes)`` on the LAST time step; with causal convs that is
the only position that has seen the whole sequence. With ``per_step=True`` the same linear is applied at every
time step (the original ``CopyMemory_TCN``): outputs ``[B, num_classes, L]``, and the weights are those of the
last-step readout (a checkpoint loads into either).
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import TCNBlock
from .layers import check_spec, conv_type
from .registry import register_model
from .spec import ModelSpec
from .widths import block_widths


class TCN(nn.Module):
    """``x: [B, in_channels, L]`` -> logits ``[B, num_classes]`` (``[B, num_classes, L]`` with ``per_step``)."""

    def __init__(self, spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int, per_step: bool = False):
        super().__init__()
        self.per_step = bool(per_step)
        if data_dim != 1:
            raise ValueError(f"net.type=TCN is for sequences (data_dim=1), got data_dim={data_dim}; "
                             f"use net.type=ResNet for images")
        if conv_type(spec) == "SRF":
            raise ValueError("conv.type=SRF (N-Jet) is 2D only and not available in net.type=TCN; "
                             "use FlexConv, CKConv or Conv")
        check_spec(spec, data_dim)
        widths = block_widths(int(spec.net.no_hidden), spec.net.block_width_factors,
                              int(spec.net.no_blocks))
        self.blocks = nn.Sequential(*[
            TCNBlock(spec, c_in, c_out)
            for c_in, c_out in zip([in_channels] + widths[:-1], widths)
        ])
        self.out_layer = nn.Linear(widths[-1], num_classes)
        nn.init.normal_(self.out_layer.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.out_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)                    # [B, C_final, L]
        if self.per_step:
            return self.out_layer(h.transpose(1, 2)).transpose(1, 2)  # [B, num_classes, L]
        return self.out_layer(h[:, :, -1])    # [B, num_classes]


@register_model("TCN", per_step=True)
def tcn(spec: ModelSpec, data_dim: int, in_channels: int, num_classes: int, per_step: bool = False) -> nn.Module:
    """FlexTCN (``conv.type=FlexConv``), CKTCN (``CKConv``) or a discrete causal TCN (``Conv``)."""
    return TCN(spec, data_dim, in_channels, num_classes, per_step=per_step)
