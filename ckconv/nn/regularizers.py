"""Regularisers on continuous kernels.

* :func:`kernel_norm_penalty` - what the original calls ``train.weight_decay`` ("LnLoss"): the
  plain (not squared) L2 norms of every CKConv/FlexConv kernel sampled in the last forward plus its bias.
  It is not optimiser weight decay and does not touch any other layer. For a SeparableFlexConv the kernel
  is the dense kernel it stands for (depthwise kernel times pointwise weights).
* :func:`anti_aliasing_penalty` - the MAGNet frequency regulariser of the paper: penalises filter
  frequencies above the Nyquist frequency of the kernel grid, so kernels transfer across resolutions.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .ckconv import CKConv, FlexConv
from .kernelnets import MFNBase
from .kernelnets.mfn import GaussianSineFilter
from .mask import effective_sigma

TARGETS = ("gabor", "gabor+mask")
METHODS = ("together", "together+mask", "summed")
FUNCTIONS = ("l2_relu", "offset_elu")


def kernel_norm_penalty(model: nn.Module) -> torch.Tensor:
    """``sum_m ||K_m||_2 + ||b_m||_2`` over CKConv/FlexConv layers, using the kernels of the last forward
    (``layer.last_kernel_norm()``).

    Args:
        model: any module; layers that have not run a forward yet (and other modules) add nothing.

    Returns a scalar tensor (0 without such layers), differentiable: add ``weight * penalty`` to the loss
    after the forward.

    Example::

        model = torch.nn.Sequential(FlexConv(3, 8, data_dim=2, horizon=33))
        loss = model(torch.randn(2, 3, 32, 32)).pow(2).mean() + 1e-4 * kernel_norm_penalty(model)
    """
    total = None
    for module in model.modules():
        term = module.last_kernel_norm() if isinstance(module, CKConv) else None
        if term is not None:
            if module.bias is not None:
                term = term + module.bias.norm()
            total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return total


def nyquist_frequency(resolution: int) -> float:
    """Nyquist frequency (cycles per unit coordinate) of a ``resolution``-tap grid on [-1, 1]: (k - 1) / 4.

    Args: ``resolution``, the number of taps ``k`` (int >= 2). Returns a float.

    Example::

        nyquist_frequency(33)     # 8.0
    """
    return (resolution - 1) / 4.0


def filter_frequencies(net: MFNBase, gauss_stddevs: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-filter frequency estimates ``(sines, gausses)``, each ``[L + 1]``.

    ``sines_l = max |W_l| / 2 pi``; ``gausses_l = gauss_stddevs * max |gamma_l| / 2 pi``. Their sum is the
    "gabor" frequency (the original's broadcasting made the max decouple into this sum).
    """
    sines, gausses = [], []
    for layer in net.filters:
        sines.append(layer.linear.weight.abs().max() / (2 * math.pi))
        gamma = layer.gamma.abs().max() if isinstance(layer, GaussianSineFilter) else layer.linear.weight.new_zeros(())
        gausses.append(gauss_stddevs * gamma / (2 * math.pi))
    return torch.stack(sines), torch.stack(gausses)


def mask_frequency(layer: FlexConv, gauss_stddevs: float) -> torch.Tensor:
    """``gauss_stddevs / 2 pi * max_d 1 / |sigma_d|``: the bandwidth of the Gaussian mask."""
    sigma = effective_sigma(layer.mask_params[:, 1])
    return gauss_stddevs / (2 * math.pi) * (1.0 / sigma).max()


def _regularised_layers(model: nn.Module) -> list[FlexConv]:
    return [m for m in model.modules() if isinstance(m, FlexConv) and isinstance(m.kernel_net, MFNBase)
            and any(isinstance(f, GaussianSineFilter) for f in m.kernel_net.filters)]


def anti_aliasing_penalty(model: nn.Module, resolution: int, factor: float = 0.1, target: str = "gabor",
                          fn: str = "l2_relu", method: str = "together", gauss_stddevs: float = 2.0) -> torch.Tensor:
    """Anti-aliasing penalty over every FlexConv (and SeparableFlexConv) with a MAGNet/Gabor kernel net.

    Args:
        resolution: number of kernel taps per dimension of the grid the kernels are sampled on (the
            horizon, e.g. 33 for 32x32 images). Required: the original's default 0 penalised everything.
        factor: lambda. target: ``gabor`` or ``gabor+mask``. method: ``together`` (each of the L+1 filters
            against ``f_N / (L + 1)``), ``together+mask`` (same as together), ``summed`` (per layer, sum of
            filter frequencies against ``f_N``). fn: ``l2_relu`` (``sum relu(over)^2``) or ``offset_elu``.
        gauss_stddevs: how many envelope/mask standard deviations count towards a frequency.

    Returns a scalar tensor (0 without such layers), computed from the kernel-net parameters only (no forward
    needed): add it to the loss.

    Example::

        model = torch.nn.Sequential(FlexConv(3, 8, data_dim=2, horizon=33))
        penalty = anti_aliasing_penalty(model, resolution=33, factor=0.1, target="gabor+mask")
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"anti-aliasing resolution={resolution!r} is not valid; allowed: an int >= 2 "
                         f"(the kernel grid size, e.g. 33 for 32x32 inputs)")
    for name, value, allowed in (("target", target, TARGETS), ("method", method, METHODS), ("fn", fn, FUNCTIONS)):
        if value not in allowed:
            raise ValueError(f"anti-aliasing {name}={value!r} is not valid; allowed: {', '.join(allowed)}")
    nyquist = nyquist_frequency(resolution)
    overs = []
    for layer in _regularised_layers(model):
        sines, gausses = filter_frequencies(layer.kernel_net, gauss_stddevs)
        freqs = sines + gausses
        n_filters = freqs.shape[0]
        mask_term = None
        if target == "gabor+mask":
            if layer.mask_params is None:
                raise ValueError("anti-aliasing target='gabor+mask' needs FlexConv layers with mask_use=True")
            mask_term = mask_frequency(layer, gauss_stddevs)
        if method == "summed":
            total = freqs.sum() + (mask_term if mask_term is not None else 0.0)
            overs.append((total - nyquist).reshape(1))
        else:
            if mask_term is not None:
                freqs = freqs + mask_term / n_filters
            overs.append(freqs - nyquist / n_filters)
    if not overs:
        return torch.zeros(())
    over = torch.cat(overs)
    if fn == "l2_relu":
        return factor * torch.relu(over).pow(2).sum()
    return factor * torch.where(over > 4, 5 * (over - 3), 5 * torch.exp(over - 4)).sum()
