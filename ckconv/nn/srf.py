"""SRF / N-Jet layer: a learnable-scale Gaussian-derivative basis with learned coefficients.

Written from the description of Pintea et al. (2021) "Resolution learning in deep convolutional networks
using scale-space theory": the kernel is ``K[o, c] = sum_f alpha[f, c, o] B_f`` where the ``B_f`` are 2D
separable Gaussian derivatives ``G_i(y) G_j(x)``, ``i + j <= order``, all at one learnable scale
``sigma = 2 ** scale`` per layer. The kernel's size follows sigma: half-size ``ceil(init_k * sigma + 0.5)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from .profiling import profiled

from .ckconv import check_channels


def hermite(n: int, t: torch.Tensor) -> torch.Tensor:
    """Physicists' Hermite polynomial ``H_n(t)`` by the recurrence ``H_{k+1} = 2t H_k - 2k H_{k-1}``."""
    previous, current = torch.ones_like(t), 2 * t
    if n == 0:
        return previous
    for k in range(1, n):
        previous, current = current, 2 * t * current - 2 * k * previous
    return current


def gaussian_derivatives(x: torch.Tensor, sigma: torch.Tensor, order: int) -> torch.Tensor:
    """Scale-normalised 1D Gaussian derivatives of orders ``0..order`` on ``x``, shape ``[order + 1, len(x)]``.

    ``G(x)`` is renormalised to sum 1 on the grid; ``G_n = (-1 / (sqrt(2) sigma))^n H_n(x / (sqrt(2) sigma))
    G(x) * sigma^n``.
    """
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2)) / (math.sqrt(2 * math.pi) * sigma)
    g = g / g.sum()
    t = x / (math.sqrt(2.0) * sigma)
    return torch.stack([
        (-1.0 / (math.sqrt(2.0) * sigma)) ** n * hermite(n, t) * g * sigma ** n for n in range(order + 1)
    ])


class SRFConv(nn.Module):
    """N-Jet / structured receptive field convolution, 2D "same", no bias.

    Args:
        in_channels, out_channels: channel counts.
        data_dim: 2 (the only supported value: a 1D version would need a causal Gaussian basis).
        order: highest derivative order (4 -> 15 basis functions).
        init_k: kernel half-size in units of sigma.
        init_scale: initial ``log2 sigma`` (0 -> sigma 1 -> 7x7 kernels).
        scale_sigma: multiplier of sigma (0 = 1). Cross-resolution fine-tuning sets it to
            ``target_res / source_res`` so filters keep their physical extent (see :meth:`set_scale_sigma`).

    Parameters: ``alpha`` ``[F, C_in, C_out]`` ~ N(0, 1) and the scalar ``scale``:
    ``15 * C_in * C_out + 1`` for order 4.

    Shapes: ``[B, C_in, H, W] -> [B, C_out, H, W]``; the kernel is ``[C_out, C_in, k, k]`` with ``k`` following
    the learned scale (``kernel_size``).

    Example::

        conv = SRFConv(3, 16, order=4)
        y = conv(torch.randn(8, 3, 32, 32))     # [8, 16, 32, 32]; conv.kernel_size == (7, 7) at init
    """

    def __init__(self, in_channels: int, out_channels: int, data_dim: int = 2, order: int = 4,
                 init_k: float = 2.0, init_scale: float = 0.0, scale_sigma: float = 0.0):
        super().__init__()
        check_channels(in_channels, out_channels)
        if data_dim != 2:
            raise ValueError(f"SRFConv data_dim={data_dim!r} is not valid; allowed: 2")
        if order < 0:
            raise ValueError(f"order={order} is not valid; allowed: an int >= 0")
        self.in_channels, self.out_channels, self.data_dim = in_channels, out_channels, data_dim
        self.order, self.init_k = order, float(init_k)
        self.pairs = [(i, j) for i in range(order + 1) for j in range(order - i, -1, -1)]
        self.alpha = nn.Parameter(torch.randn(len(self.pairs), in_channels, out_channels))
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.scale_sigma = float(scale_sigma)
        self._kernel_size: tuple[int, int] | None = None

    def set_scale_sigma(self, factor: float) -> None:
        """Multiply sigma by ``factor`` (cross-resolution: target / source resolution)."""
        self.scale_sigma = float(factor)

    def get_extra_state(self):
        return {"scale_sigma": self.scale_sigma}

    def set_extra_state(self, state) -> None:
        self.scale_sigma = float(state["scale_sigma"])

    def sigma(self) -> torch.Tensor:
        return 2.0 ** self.scale * (self.scale_sigma if self.scale_sigma > 0 else 1.0)

    def _half_size(self, sigma: torch.Tensor) -> int:
        return int(math.ceil(self.init_k * float(sigma) + 0.5))  # one host sync per forward

    @property
    def kernel_size(self) -> tuple[int, int]:
        if self._kernel_size is None:
            size = 2 * self._half_size(self.sigma().detach()) + 1
            return (size, size)
        return self._kernel_size

    def kernel(self) -> torch.Tensor:
        """The ``[C_out, C_in, k, k]`` kernel at the current scale."""
        sigma = self.sigma()
        half = self._half_size(sigma.detach())
        x = torch.arange(-half, half + 1, device=self.alpha.device, dtype=self.alpha.dtype)
        g = gaussian_derivatives(x, sigma, self.order)  # [order + 1, k]
        basis = torch.stack([g[i][:, None] * g[j][None, :] for i, j in self.pairs])  # [F, k, k]
        self._kernel_size = (2 * half + 1,) * 2
        return torch.einsum("fco,fyx->ocyx", self.alpha, basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``."""
        with profiled("srfconv"):
            kernel = self.kernel()
            return F.conv2d(x, kernel.to(x.dtype), padding=kernel.shape[-1] // 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, order={self.order}, init_k={self.init_k}"
