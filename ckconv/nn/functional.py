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


# --- FFT correlation ---------------------------------------------------------------------------------
# y[n] = sum_m x[n + m - p] k[m] for n < S (x is zero outside [0, S); p taps of the kernel lie before the
# current position: k // 2 for "same", k - 1 for causal). With a transform length N >= S + max(p, k - 1 - p)
# the circular correlation of x (zero-extended to N) with the kernel rolled by -p equals y for every kept
# output, with no padded copy of x: the kernel's roll takes the padding's place. For a "same" kernel that is
# S + k // 2 instead of the S + k - 1 of an explicitly padded input (48 instead of 64 for 33 x 33 kernels on
# 32 x 32 inputs).
#
# The channel contraction per frequency is one batched matrix product over the frequencies, on spectra in
# frequency-major layout [F, N, C], with the conjugations as conjugate-transposed views (1.2-1.6x faster than
# einsum on a CPU). Depthwise kernels have one channel each: products per channel.
#
# What the backward pass keeps: autograd through the FFT ops would keep the padded input, both spectra and
# the products, about twice the training memory of the spatial convolution. The autograd function below
# keeps, for 2D inputs, only x and the kernel and recomputes their spectra in the backward pass (an image's
# spectrum is 1.3-2.3x its size, and 2D networks are where memory decides the batch size); for 1D inputs it
# keeps the two spectra it already computed (1.1-2x the input's size; a sequence model's activations are
# small) and a sequence model's training step is 10-15% faster for it.


def _transform_lengths(sizes, taps, before) -> list[int]:
    # (and >= k: a kernel longer than the transform would wrap onto itself)
    return [_fast_length(max(s + max(p, k - 1 - p), k)) for s, k, p in zip(sizes, taps, before)]


def _fft_dtype(t: torch.Tensor) -> torch.Tensor:
    """FFTs need float32/float64 (no bf16/fp16 support for arbitrary lengths)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _frequency_major(spectrum: torch.Tensor) -> torch.Tensor:
    """``[N, C, *freqs] -> [F, N, C]`` (contiguous): one channel matrix per frequency, for ``torch.bmm``."""
    return spectrum.flatten(2).permute(2, 0, 1).contiguous()


class _FFTPlan:
    """Shapes and transform lengths of one correlation, and the transforms into and out of the layout of the
    channel contraction (frequency-major for dense kernels, channel-major for depthwise ones)."""

    def __init__(self, x: torch.Tensor, kernel: torch.Tensor, before: tuple[int, ...], depthwise: bool):
        self.dims = tuple(range(2, x.dim()))
        self.sizes, self.taps = tuple(x.shape[2:]), tuple(kernel.shape[2:])
        self.before, self.depthwise = before, depthwise
        self.lengths = _transform_lengths(self.sizes, self.taps, before)
        self.freqs = (*self.lengths[:-1], self.lengths[-1] // 2 + 1)

    def spectrum(self, t: torch.Tensor) -> torch.Tensor:
        """Spectrum of an input or output-gradient ``[N, C, *S]`` (zero-extended to the transform lengths)."""
        t_f = torch.fft.rfftn(_fft_dtype(t), s=self.lengths, dim=self.dims)
        return t_f if self.depthwise else _frequency_major(t_f)

    def kernel_spectrum(self, kernel: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Spectrum of the kernel zero-extended to the transform lengths and rolled so tap ``p`` is at 0."""
        extended = F.pad(kernel.to(dtype), [pad for d in reversed(self.dims)
                                            for pad in (0, self.lengths[d - 2] - kernel.shape[d])])
        k_f = torch.fft.rfftn(torch.roll(extended, [-p for p in self.before], self.dims), dim=self.dims)
        return k_f[:, 0] if self.depthwise else _frequency_major(k_f)

    def signal(self, spectra: torch.Tensor, crop: tuple[int, ...], roll: bool = False) -> torch.Tensor:
        """Inverse transform of a contraction result, cropped to ``crop``; ``roll``: undo the kernel's roll."""
        if not self.depthwise:  # [F, N, C] -> [N, C, *freqs]
            spectra = spectra.permute(1, 2, 0).reshape(*spectra.shape[1:], *self.freqs)
        out = torch.fft.irfftn(spectra, s=self.lengths, dim=self.dims)
        if roll:
            out = torch.roll(out, list(self.before), self.dims)
        return out[(...,) + tuple(slice(0, n) for n in crop)]

    # The three contractions: forward Y[b, o] = sum_i X[b, i] conj(K[o, i]); input gradient
    # sum_o G[b, o] K[o, i] (the gradient convolved with the kernel); kernel gradient
    # sum_b X[b, i] conj(G[b, o]) (x correlated with the gradient), computed as G^H X.
    def correlate(self, x_s: torch.Tensor, k_s: torch.Tensor) -> torch.Tensor:
        return x_s * k_s.conj() if self.depthwise else torch.bmm(x_s, k_s.mH)

    def input_grad(self, g_s: torch.Tensor, k_s: torch.Tensor) -> torch.Tensor:
        return g_s * k_s if self.depthwise else torch.bmm(g_s, k_s)

    def kernel_grad(self, x_s: torch.Tensor, g_s: torch.Tensor) -> torch.Tensor:
        return (x_s * g_s.conj()).sum(0).unsqueeze(1) if self.depthwise else torch.bmm(g_s.mH, x_s)


class _FFTCorrelate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, bias, before, depthwise):
        plan = _FFTPlan(x, kernel, before, depthwise)
        x_s = plan.spectrum(x)
        k_s = plan.kernel_spectrum(kernel, x_s.real.dtype)
        y = plan.signal(plan.correlate(x_s, k_s), plan.sizes)
        if bias is not None:
            y = y + bias.to(y.dtype).view(1, -1, *([1] * len(plan.dims)))
        ctx.plan, ctx.keep_spectra, ctx.dtypes = plan, x.dim() == 3, (x.dtype, kernel.dtype)
        ctx.save_for_backward(*((x_s, k_s) if ctx.keep_spectra else (x, kernel)))
        return y.to(x.dtype) if y.dtype != x.dtype else y.contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        plan, (x_dtype, kernel_dtype) = ctx.plan, ctx.dtypes
        g_s = plan.spectrum(grad)
        if ctx.keep_spectra:
            x_s, k_s = ctx.saved_tensors
        else:
            x, kernel = ctx.saved_tensors
            x_s = plan.spectrum(x) if ctx.needs_input_grad[1] else None
            k_s = plan.kernel_spectrum(kernel, g_s.real.dtype) if ctx.needs_input_grad[0] else None
        grad_x = grad_kernel = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = plan.signal(plan.input_grad(g_s, k_s), plan.sizes).to(x_dtype)
        if ctx.needs_input_grad[1]:
            grad_kernel = plan.signal(plan.kernel_grad(x_s, g_s), plan.taps, roll=True).to(kernel_dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0,) + plan.dims)
        return grad_x, grad_kernel, grad_bias, None, None


# Not traced by torch.compile: the transform lengths (the next 5-smooth size) would become guards on the input
# and kernel sizes, so every new kernel size of a growing mask would recompile (and after 8 recompiles dynamo
# runs the layer's forward eagerly); inductor generates no code for complex FFTs anyway.
@torch.compiler.disable
def fft_correlate(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, before: tuple[int, ...], *,
                  depthwise: bool = False) -> torch.Tensor:
    """``y[n] = sum_m x[n + m - p] k[m] (+ bias)`` per spatial dimension, ``p = before[d]``, zeros outside x.

    ``before = k // 2`` per dimension is the "same" correlation, ``k - 1`` the causal one. ``depthwise``: the
    kernel is ``[C, 1, *taps]`` and each channel is correlated with its own kernel.
    """
    _groups(x, kernel, depthwise)  # only checks the kernel layout: the FFT has no groups argument
    return _FFTCorrelate.apply(x, kernel, bias, tuple(before), depthwise)


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
    return fft_correlate(x, kernel, bias, (kernel.shape[-2] // 2, kernel.shape[-1] // 2), depthwise=depthwise)


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
    return fft_correlate(x, kernel, bias, (kernel.shape[-1] - 1,), depthwise=depthwise)


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


def layout_threshold(entry: int | dict, input_size: int | None) -> int:
    """One layout's threshold: an entry is either one threshold for every input size or
    ``{measured input size: threshold}``, of which the entry of the largest measured size <= ``input_size``
    applies (the smallest measured size's below all of them; the largest threshold when the size is unknown)."""
    if not isinstance(entry, dict):
        return entry
    measured = sorted((int(size), threshold) for size, threshold in entry.items())
    if input_size is None:
        return max(threshold for _, threshold in measured)
    applicable = [threshold for size, threshold in measured if size <= input_size]
    return applicable[-1] if applicable else measured[0][1]


def prefer_fft(kernel_size: tuple[int, ...], device_type: str = "cpu", depthwise: bool = False,
               input_size: int | None = None) -> bool:
    """The ``use_fft="auto"`` rule: pick FFT when the kernel is large enough for it to be faster on this
    device type (1D: taps >= the threshold; 2D: height * width >= threshold ** 2). The threshold may depend on
    ``input_size``, the input's length (1D) or smaller side (2D): the FFT's fixed costs weigh less on larger
    inputs."""
    rule = crossover_rule(device_type)
    key = f"{len(kernel_size)}d" + ("_depthwise" if depthwise else "")
    threshold = layout_threshold(rule.get(key, rule[f"{len(kernel_size)}d"]), input_size)
    if len(kernel_size) == 1:
        return kernel_size[0] >= threshold
    return kernel_size[0] * kernel_size[1] >= threshold ** 2


def convolve(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, use_fft, *,
             depthwise: bool = False) -> torch.Tensor:
    """Causal conv for 1D inputs, "same" conv for 2D; ``use_fft`` is True, False or ``"auto"``.

    ``depthwise``: ``kernel`` is ``[C, 1, *taps]``, one kernel per channel (see the module docstring).
    """
    if use_fft == "auto":
        fft = prefer_fft(tuple(kernel.shape[2:]), x.device.type, depthwise, input_size=min(x.shape[2:]))
    else:
        fft = bool(use_fft)
    if x.dim() == 3:
        return (causal_fftconv1d if fft else causal_conv1d)(x, kernel, bias, depthwise=depthwise)
    if x.dim() == 4:
        return (fftconv2d_same if fft else conv2d_same)(x, kernel, bias, depthwise=depthwise)
    raise ValueError(f"expected a [B, C, L] or [B, C, H, W] input, got shape {tuple(x.shape)}")
