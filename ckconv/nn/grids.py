"""Relative-position grids on which continuous kernels are sampled.

A kernel of ``n`` taps per dimension is sampled on ``linspace(-1, 1, n)``: endpoints included, spacing
``2 / (n - 1)``, centre exactly 0 for odd ``n``. In 1D the causal convolution puts coordinate +1 on the
current time step and -1 on the oldest one.
"""
from __future__ import annotations

import math

import torch

HORIZON_KEYWORDS = ("same", "full")


def coordinates(n: int, device=None, dtype=None) -> torch.Tensor:
    """The 1D coordinate vector ``linspace(-1, 1, n)`` of shape ``[n]``.

    Args: ``n`` taps (>= 2); ``device``, ``dtype`` as in ``torch.linspace``.

    Example::

        coordinates(5)     # tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    """
    return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)


def cartesian_points(vectors: list[torch.Tensor]) -> torch.Tensor:
    """All points of the grid spanned by per-dimension coordinate vectors, shape ``[prod(n_d), D]``.

    Matrix ("ij") indexing: the first coordinate column is the first spatial axis (rows in 2D).

    Args: ``vectors``, one 1D tensor ``[n_d]`` per dimension ``d``.

    Example::

        cartesian_points([coordinates(3), coordinates(5)]).shape     # [15, 2]; row 1 is (-1.0, -0.5)
    """
    mesh = torch.meshgrid(*vectors, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def parse_horizon(horizon, data_dim: int):
    """Validate ``horizon`` at construction time; returns an int or one of ``"same"``/``"full"``.

    Numeric strings ("33", as the original config passes them) are accepted.
    """
    if isinstance(horizon, str) and horizon not in HORIZON_KEYWORDS:
        try:
            horizon = int(horizon)
        except ValueError:
            raise ValueError(
                f"horizon={horizon!r} is not valid; allowed: a positive int (odd in 2D), "
                f"{' or '.join(repr(k) for k in HORIZON_KEYWORDS)}"
            ) from None
    if isinstance(horizon, bool) or not isinstance(horizon, (int, str)):
        raise ValueError(f"horizon={horizon!r} is not valid; allowed: an int, 'same' or 'full'")
    if isinstance(horizon, int):
        if horizon < 2:
            raise ValueError(f"horizon={horizon} is too small; allowed: an int >= 2 (odd >= 3 in 2D)")
        if data_dim == 2 and horizon % 2 == 0:
            raise ValueError(
                f"horizon={horizon} is even; 2D kernels must have an odd size (allowed: odd ints >= 3, "
                f"'same', 'full'), e.g. {horizon + 1}"
            )
    return horizon


def resolve_horizon(horizon, input_length: int, data_dim: int) -> int:
    """Number of kernel taps per dimension for a given input length (last input dimension).

    ``"same"`` -> the input length (rounded up to odd in 2D, where "same" convolution needs an odd
    kernel; the original raised instead); ``"full"`` -> ``2 * length - 1`` (odd, reaches every
    position from every position); an int -> itself. At least 2 taps (3 in 2D): a grid needs two points,
    and a 2D one an odd number (a 1x1 feature map, e.g. the last stage of a ResNet on 32x32 images).
    """
    if horizon == "same":
        n = input_length
        if data_dim == 2 and n % 2 == 0:
            n += 1
        return max(n, 3 if data_dim == 2 else 2)
    if horizon == "full":
        return max(2 * input_length - 1, 3 if data_dim == 2 else 2)
    return int(horizon)


def grid_spacing(n: int) -> float:
    return 2.0 / (n - 1)


def threshold_distance(threshold: float) -> float:
    """Distance (in sigmas) at which an unnormalised Gaussian falls to ``threshold``: sqrt(-2 ln tau)."""
    return math.sqrt(-2.0 * math.log(threshold))
