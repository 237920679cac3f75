"""Model-level helpers for logging."""
from __future__ import annotations

from torch import nn

from ckconv import FlexConv, SRFConv


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the original's ``no_params``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def kernel_sizes(model: nn.Module) -> dict[str, tuple[int, ...] | None]:
    """Current (learned, cropped) kernel size of every FlexConv / SRF layer, by module name.

    Uses each layer's ``kernel_size`` property; ``None`` for a layer whose grid is not known yet
    (``conv.horizon="same"``/``"full"`` before the first forward). Plain convs and CKConv (fixed
    full-horizon kernel) are not listed; models without such layers (CIFAR ResNets) give ``{}``.
    """
    sizes = {}
    for name, module in model.named_modules():
        if isinstance(module, (FlexConv, SRFConv)):
            size = module.kernel_size
            sizes[name] = None if size is None else tuple(int(s) for s in size)
    return sizes
