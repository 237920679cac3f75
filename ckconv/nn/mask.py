"""The learnable Gaussian mask of FlexConv and its dynamic cropping.

Mask parameters are one tensor ``[D, 2]`` of rows ``(mean_d, sigma_d)``. The mask is an unnormalised
Gaussian (peak 1), separable over dimensions: ``m(p) = prod_d exp(-1/2 ((p_d - mean_d) / sigma_d)^2)``.
"""
from __future__ import annotations

import torch

# Below SIGMA_EPS the mask width is floored (never zero: no division by zero or NaN); above it sigma is used
# exactly as stored, so a trained mask gives the original's kernels to the last bit.
SIGMA_EPS = 1e-3
MASK_TYPES = ("gaussian",)  # the implemented mask types (FlexConv's ``mask_type``)


def effective_sigma(sigma: torch.Tensor) -> torch.Tensor:
    """The width the mask uses for a stored ``sigma``: ``|sigma|`` where ``|sigma| >= SIGMA_EPS`` (the sign is
    irrelevant, as in the original, which squared it), and below that the parabola
    ``SIGMA_EPS / 2 + sigma^2 / (2 SIGMA_EPS)``, which meets ``|sigma|`` with the same slope at ``+-SIGMA_EPS`` and
    bottoms out at ``SIGMA_EPS / 2``: a smooth floor with finite gradients everywhere."""
    magnitude = sigma.abs()
    floor = 0.5 * SIGMA_EPS + sigma * sigma / (2.0 * SIGMA_EPS)
    return torch.where(magnitude >= SIGMA_EPS, magnitude, floor)


def gaussian_mask(vectors: list[torch.Tensor], mask_params: torch.Tensor) -> torch.Tensor:
    """Mask values on the grid spanned by per-dimension coordinate ``vectors``, shape ``[n_1, ..., n_D]``."""
    mask = None
    for d, coords in enumerate(vectors):
        mean, sigma = mask_params[d, 0], effective_sigma(mask_params[d, 1])
        values = torch.exp(-0.5 * ((coords - mean) / sigma) ** 2)
        shape = [1] * len(vectors)
        shape[d] = -1
        values = values.view(shape)
        mask = values if mask is None else mask * values
    return mask


@torch.no_grad()
def crop_starts(coords: torch.Tensor, mask_params: torch.Tensor, reach: float, causal: bool) -> torch.Tensor:
    """First kept index per dimension (a tensor, so the caller syncs with the host once for all dims).

    ``reach`` = ``sqrt(-2 ln threshold)``: the mask is below the threshold beyond ``reach * sigma``.

    * 2D (not causal): ``r_d = |mean_d| + reach * sigma_d``; if ``r_d < 1`` keep the coordinates
      ``g_j > -r_d`` of the first half and the mirror image, i.e. a slice centred on 0 (odd size for odd
      ``n``); else keep everything.
    * 1D causal: ``root = mean - reach * sigma``; if ``|root| < 1`` keep the suffix ``g_j > root`` (drops the
      far past), else keep everything.
    """
    n = coords.shape[0]
    mean, sigma = mask_params[:, 0], effective_sigma(mask_params[:, 1])
    if causal:
        root = mean - reach * sigma
        start = (coords[None, :] <= root[:, None]).sum(dim=1)
        return torch.where(root.abs() < 1, start, torch.zeros_like(start))
    radius = mean.abs() + reach * sigma
    first_half = coords[: n // 2 + 1]
    start = (first_half[None, :] <= -radius[:, None]).sum(dim=1).clamp(max=n // 2)
    return torch.where(radius < 1, start, torch.zeros_like(start))
