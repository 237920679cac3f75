"""Small pieces shared by the kernel networks."""
from __future__ import annotations

import torch
from torch import nn

BIAS_INITS = ("default", "zero", "uniform")


def parse_bias_init(bias_init) -> str:
    """Normalise ``kernel.bias_init``: None / "None" / "default" -> torch default; "zero"; "uniform"."""
    if bias_init is None or bias_init in ("None", "none", ""):
        return "default"
    if bias_init not in BIAS_INITS:
        raise ValueError(f"kernel bias_init={bias_init!r} is not valid; allowed: None, {', '.join(BIAS_INITS)}")
    return bias_init


@torch.no_grad()
def init_bias(linear: nn.Linear, bias_init: str) -> None:
    """Apply ``bias_init`` to ``linear.bias`` (no-op without bias or for the torch default)."""
    if linear.bias is None or bias_init == "default":
        return
    if bias_init == "zero":
        linear.bias.zero_()
    else:  # "uniform" (the original crashed on this for the MFN output layer)
        linear.bias.uniform_(-1.0, 1.0)


class KernelNet(nn.Module):
    """Base class: maps points ``[P, D]`` in [-1, 1]^D to kernel values ``[P, out_features]``."""

    data_dim: int
    out_features: int

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
