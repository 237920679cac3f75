"""Convolution primitives: 2D "same" and 1D causal, each as a spatial and an FFT version.

All are cross-correlations (PyTorch convention), stride 1, with an optional per-output-channel bias.
Shapes: ``x`` is ``[B, C_in, *spatial]``, ``kernel`` is ``[C_out, C_in, *kernel_size]``, and the output is
``[B, C_out, *spatial]`` (same size as the input). With ``depthwise=True`` the kernel is ``[C, 1,
*kernel_size]`` (PyTorch's ``groups=C`` layout): channel ``c`` of the output is channel ``c`` of the input
convolved with its own kernel, no channel contraction; :func:`pointwise` is the 1x1 channel mix that
follows it in a separable layer.

The FFT versions pass explicit transform lengths, so they are exact for odd and even input and kernel
sizes and for non-square kernels (the original was wrong for odd padded lengths).

Example::

    from ckconv.nn.functional import causal_conv1d, convolve
    x, kernel = torch.randn(2, 3, 16, 16), torch.randn(4, 3, 5, 5)
    y = convolve(x, kernel, None, use_fft="auto")       # [2, 4, 16, 16] ("same")
    y = causal_conv1d(torch.randn(2, 3, 50), torch.randn(4, 3, 7))   # [2, 4, 50], causal
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F


def _check_odd(kernel: torch.Tensor) -> None:
    sizes = tuple(kernel.shape[2:])
    if any(k % 2 == 0 for k in sizes):
        raise ValueError(f"'same' convolution needs odd kernel sizes, got {sizes}")


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return y
    return y + bias.view(1, -1, *([1] * (y.dim() - 2)))


def _fast_length(n: int) -> int:
    """Smallest 5-smooth integer >= n: FFTs of such lengths are fast and the extra zeros change nothing."""
    length = n
    while True:
        m = length
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return length
        length += 1


def _groups(x: torch.Tensor, kernel: torch.Tensor, depthwise: bool) -> int:
    """``groups`` of the spatial conv: 1 (dense) or ``C`` (depthwise, after checking the kernel layout)."""
    if not depthwise:
        return 1
    channels = x.shape[1]
    if tuple(kernel.shape[:2]) != (channels, 1):
        raise ValueError(f"a depthwise kernel for {channels} channels must be [{channels}, 1, *taps], "
                         f"got {tuple(kernel.shape)}")
    return channels


def _fft_correlate(x_padded: torch.Tensor, kernel: torch.Tensor, out_sizes: tuple[int, ...],
                   depthwise: bool = False) -> torch.Tensor:
    """Linear cross-correlation of an already padded input with ``kernel``, cropped to ``out_sizes``.

    ``y[n] = sum_m x_padded[n + m] k[m]``. A transform length >= the padded input length means the circular
    correlation has no wrap-around for the kept outputs ``n < out_size`` (since ``n + m <= padded - 1``).
    ``depthwise``: ``kernel`` is ``[C, 1, *taps]`` and each channel is correlated with its own kernel.
    """
    _groups(x_padded, kernel, depthwise)  # only checks the kernel layout: the FFT has no groups argument
    dims = tuple(range(2, x_padded.dim()))
    lengths = [_fast_length(x_padded.shape[d]) for d in dims]
    dtype = x_padded.dtype
    # FFTs need float32/float64 (no bf16/fp16 support for arbitrary lengths).
    x32 = x_padded.float() if dtype in (torch.float16, torch.bfloat16) else x_padded
    k32 = kernel.to(x32.dtype)
    x_f = torch.fft.rfftn(x32, s=lengths, dim=dims)
    k_f = torch.fft.rfftn(k32, s=lengths, dim=dims)
    if depthwise:
        # One kernel per channel: a per-channel product per frequency, [B, C, f] x [C, f] -> [B, C, f].
        y_f = x_f * k_f[:, 0].conj()
    else:
        # Channel contraction per frequency: [B, I, f] x [O, I, f] -> [B, O, f].
        y_f = torch.einsum("bi...,oi...->bo...", x_f, k_f.conj())
    y = torch.fft.irfftn(y_f, s=lengths, dim=dims)
    index = (slice(None), slice(None)) + tuple(slice(0, n) for n in out_sizes)
    return y[index].to(dtype)


def conv2d_same(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None, *,
                depthwise: bool = False) -> torch.Tensor:
    """Spatial 2D "same" convolution with an odd (possibly non-square) kernel."""
    _check_odd(kernel)
    kh, kw = kernel.shape[-2:]
    if x.is_contiguous(memory_format=torch.channels_last):
        # A generated kernel is always contiguous; matching the input's layout lets cuDNN stay channels-last.
        kernel = kernel.contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, kernel, bias, padding=(kh // 2, kw // 2), groups=_groups(x, kernel, depthwise))


def fftconv2d_same(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None, *,
                   depthwise: bool = False) -> torch.Tensor:
    """FFT 2D "same" convolution; equal to :func:`conv2d_same` up to float rounding."""
    _check_odd(kernel)
    kh, kw = kernel.shape[-2:]
    x_padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2))
    return _add_bias(_fft_correlate(x_padded, kernel, tuple(x.shape[-2:]), depthwise), bias)


def causal_conv1d(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None, *,
                  depthwise: bool = False) -> torch.Tensor:
    """Spatial causal 1D convolution: ``y[t] = sum_m K[m] x[t - (k - 1) + m]``.

    The LAST tap multiplies the current sample, the first the oldest; any kernel length works.
    """
    k = kernel.shape[-1]
    return F.conv1d(F.pad(x, (k - 1, 0)), kernel, bias, groups=_groups(x, kernel, depthwise))


def causal_fftconv1d(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None, *,
                     depthwise: bool = False) -> torch.Tensor:
    """FFT causal 1D convolution; equal to :func:`causal_conv1d` up to float rounding."""
    k = kernel.shape[-1]
    x_padded = F.pad(x, (k - 1, 0))
    return _add_bias(_fft_correlate(x_padded, kernel, (x.shape[-1],), depthwise), bias)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """1x1 channel mix ``y[b, o, ...] = sum_i W[o, i] x[b, i, ...] + bias[o]`` for 1D and 2D inputs."""
    conv = F.conv1d if x.dim() == 3 else F.conv2d
    return conv(x, weight.view(*weight.shape, *([1] * (x.dim() - 2))), bias)


# --- choosing between the spatial and the FFT path ---------------------------------------------------
# The crossover is a property of the hardware: a table per device type in fft_crossover.json, measured with
# benchmarks/fft_crossover.py (forward + backward of one layer, batch 64, 24 -> 24 channels), which also
# rewrites a device's entry (``--write``). A device type without an entry (CUDA is not yet measured) uses
# the CPU rule; see the README section "Spatial vs FFT convolution".
CROSSOVER_FILE = Path(__file__).with_name("fft_crossover.json")
CROSSOVER_TABLE = {device: rule for device, rule in json.loads(CROSSOVER_FILE.read_text()).items()
                   if isinstance(rule, dict)}
FALLBACK_DEVICE = "cpu"


def crossover_rule(device_type: str = "cpu") -> dict:
    """The measured thresholds of ``device_type`` (the CPU's where that device type is not yet measured)."""
    return CROSSOVER_TABLE.get(device_type, CROSSOVER_TABLE[FALLBACK_DEVICE])


def parse_use_fft(use_fft):
    """The ``use_fft`` argument: True, False or "auto" (strings "true"/"false"/"auto" in any case)."""
    if isinstance(use_fft, str):
        use_fft = {"true": True, "false": False, "auto": "auto"}.get(use_fft.lower(), use_fft)
    if use_fft is True or use_fft is False or use_fft == "auto":  # `is`: 1 / 0 are not accepted as booleans
        return use_fft
    raise ValueError(f"use_fft={use_fft!r} is not valid; allowed: True, False, 'auto'")


def prefer_fft(kernel_size: tuple[int, ...], device_type: str = "cpu", depthwise: bool = False) -> bool:
    """The ``use_fft="auto"`` rule: pick FFT when the kernel is large enough for it to be faster on this
    device type (1D: taps >= the threshold; 2D: height * width >= threshold ** 2)."""
    rule = crossover_rule(device_type)
    key = f"{len(kernel_size)}d" + ("_depthwise" if depthwise else "")
    threshold = rule.get(key, rule[f"{len(kernel_size)}d"])
    if len(kernel_size) == 1:
        return kernel_size[0] >= threshold
    return kernel_size[0] * kernel_size[1] >= threshold ** 2


def convolve(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, use_fft, *,
             depthwise: bool = False) -> torch.Tensor:
    """Causal conv for 1D inputs, "same" conv for 2D; ``use_fft`` is True, False or ``"auto"``.

    ``depthwise``: ``kernel`` is ``[C, 1, *taps]``, one kernel per channel (see the module docstring).
    """
    if use_fft == "auto":
        fft = prefer_fft(tuple(kernel.shape[2:]), x.device.type, depthwise)
    else:
        fft = bool(use_fft)
    if x.dim() == 3:
        return (causal_fftconv1d if fft else causal_conv1d)(x, kernel, bias, depthwise=depthwise)
    if x.dim() == 4:
        return (fftconv2d_same if fft else conv2d_same)(x, kernel, bias, depthwise=depthwise)
    raise ValueError(f"expected a [B, C, L] or [B, C, H, W] input, got shape {tuple(x.shape)}")
