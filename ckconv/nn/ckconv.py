"""CKConv and FlexConv layers.

A continuous kernel convolution samples its kernel from a small network (the kernel net) evaluated on a
grid of relative positions in [-1, 1]^D. CKConv uses the full grid; FlexConv multiplies the kernel with a
learnable Gaussian mask and crops the grid where the mask is below a threshold, so the kernel size is
learned. SeparableFlexConv is FlexConv with one kernel per input channel followed by a 1x1 channel mix.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from .profiling import profiled

from . import grids
from .functional import convolve, parse_use_fft, pointwise
from .kernelnets import KERNEL_TYPES, build_kernel_net
from .mask import MASK_TYPES, crop_starts, effective_sigma, gaussian_mask

def check_channels(in_channels, out_channels) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not valid; allowed: a positive int")


def _check_data_dim(data_dim) -> None:
    if data_dim not in (1, 2):
        raise ValueError(f"data_dim={data_dim!r} is not valid; allowed: 1 (sequences, causal) or 2 (images)")


class CKConv(nn.Module):
    """Continuous kernel convolution with a full-horizon kernel (no mask, no cropping).

    Args:
        in_channels, out_channels: channel counts ``C_in``, ``C_out`` (positive ints).
        data_dim: 1 for sequences ``[B, C_in, L]`` (causal convolution: output ``t`` sees inputs ``<= t``),
            2 for images ``[B, C_in, H, W]`` ("same" convolution). Output has the input's spatial size.
        horizon: kernel taps per dimension: an int (odd in 2D), ``"same"`` (the input length; rounded up
            to odd in 2D) or ``"full"`` (``2 * length - 1``). Strings resolve at the first forward from the
            LAST input dimension and are then fixed (saved in the state dict); use :meth:`set_horizon` to
            move the layer to another resolution.
        kernel_type: kernel net, one of ``MAGNet`` (paper default), ``Gabor``, ``Fourier``, ``SIREN``,
            ``nSIREN``, ``MLP``.
        kernel_no_hidden, kernel_no_layers: kernel-net width ``H`` and depth ``L`` (MFNs: hidden linears,
            ``L + 1`` filters; SIREN/MLP: all linears).
        kernel_input_scale: MAGNet/Gabor/Fourier frequency scale (divided by ``sqrt(L + 1)`` per layer).
        kernel_omega_0, kernel_learn_omega_0: SIREN frequency and whether it is learned.
        kernel_weight_norm: weight normalisation of every kernel-net linear (SIREN/MLP).
        kernel_steerable: rotated MAGNet envelopes (2D).
        kernel_init_spatial_value: range of the MAGNet/Gabor envelope centres ``mu ~ U(-v, v)`` (<= 1).
        kernel_bias_init: kernel-net biases: None (torch default), ``"zero"`` or ``"uniform"``.
        kernel_norm, kernel_activation: MLP kernel net only.
        sampling_rate_norm: constant multiplier of the sampled kernel (cross-resolution rescaling).
        bias: conv bias (``C_out``, init 0) and kernel-net biases.
        use_fft: ``"auto"`` (default: the faster exact path for the current kernel size, see
            :func:`ckconv.nn.functional.prefer_fft`), ``True`` (FFT convolution) or ``False`` (spatial).

    Shapes: ``[B, C_in, L] -> [B, C_out, L]`` (1D, causal) and ``[B, C_in, H, W] -> [B, C_out, H, W]`` (2D,
    "same"); stride 1. The kernel of the last forward is ``last_kernel`` ``[C_out, C_in, *kernel_size]``.

    Example::

        conv = CKConv(3, 16, data_dim=2, horizon=33)
        y = conv(torch.randn(8, 3, 32, 32))     # [8, 16, 32, 32]; conv.kernel_size == (33, 33)
        seq = CKConv(1, 8, data_dim=1, horizon="same")
        y = seq(torch.randn(8, 1, 100))         # [8, 8, 100]; y[..., t] depends on x[..., :t + 1] only
    """

    def __init__(self, in_channels: int, out_channels: int, data_dim: int = 2, horizon="same", *,
                 kernel_type: str = "MAGNet", kernel_no_hidden: int = 32, kernel_no_layers: int = 3,
                 kernel_input_scale: float = 25.6, kernel_omega_0: float = 30.0, kernel_learn_omega_0: bool = False,
                 kernel_weight_norm: bool = False, kernel_steerable: bool = False,
                 kernel_init_spatial_value: float = 1.0, kernel_bias_init=None, kernel_norm: str = "",
                 kernel_activation: str = "ReLU", sampling_rate_norm: float = 1.0, bias: bool = True,
                 use_fft="auto", _init_spatial_center: float = 0.0):
        super().__init__()
        check_channels(in_channels, out_channels)
        _check_data_dim(data_dim)
        if kernel_type not in KERNEL_TYPES:
            raise ValueError(f"kernel_type={kernel_type!r} is not valid; allowed: {', '.join(KERNEL_TYPES)}")
        if kernel_init_spatial_value > 1:
            warnings.warn(f"kernel_init_spatial_value={kernel_init_spatial_value} > 1 is clamped to 1.0")
            kernel_init_spatial_value = 1.0
        self.in_channels, self.out_channels, self.data_dim = in_channels, out_channels, data_dim
        self.horizon = grids.parse_horizon(horizon, data_dim)
        self.use_fft = parse_use_fft(use_fft)
        self.kernel_net = build_kernel_net(
            kernel_type, data_dim, math.prod(self.kernel_channels), hidden=kernel_no_hidden,
            no_layers=kernel_no_layers, input_scale=kernel_input_scale, omega_0=kernel_omega_0,
            learn_omega_0=kernel_learn_omega_0,
            weight_norm=kernel_weight_norm, steerable=kernel_steerable, init_spatial_value=kernel_init_spatial_value,
            init_spatial_center=_init_spatial_center, bias_init=kernel_bias_init, norm=kernel_norm,
            activation=kernel_activation, bias=bias,
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Grid size and kernel multiplier are plain Python numbers (no host sync to read them) saved in the
        # state dict through get_extra_state. 0 = not resolved yet ("same"/"full" before the first forward).
        self.grid_size = self.horizon if isinstance(self.horizon, int) else 0
        self.sampling_rate_norm = float(sampling_rate_norm)
        self._rescale_from: int | None = None
        self.last_kernel: torch.Tensor | None = None  # kernel of the last forward (kernel-norm penalty)
        self._kernel_size: tuple[int, ...] | None = None
        self._eval_cache: tuple | None = None

    # --- resolution -------------------------------------------------------------------------------
    def set_horizon(self, horizon, rescale: bool = True) -> None:
        """Resample the kernel on a grid of ``horizon`` taps over the same [-1, 1] extent.

        Used to move a trained layer to another input resolution (cross-resolution). With ``rescale``
        the kernel is multiplied by ``((old - 1) / (new - 1)) ** D`` so that a finer sampling of the same
        continuous kernel gives responses of the same magnitude (e.g. 17 -> 33 taps in 2D: x0.25).
        """
        horizon = grids.parse_horizon(horizon, self.data_dim)
        old = self.grid_size
        self.horizon = horizon
        self.grid_size = horizon if isinstance(horizon, int) else 0
        if rescale and old:
            if self.grid_size:
                self.sampling_rate_norm *= ((old - 1) / (self.grid_size - 1)) ** self.data_dim
            else:
                self._rescale_from = old  # applied when the new size resolves at the next forward
        self._invalidate()

    def _resolve_grid(self, x: torch.Tensor) -> int:
        if not self.grid_size:
            self.grid_size = grids.resolve_horizon(self.horizon, x.shape[-1], self.data_dim)
            if self._rescale_from:
                self.sampling_rate_norm *= ((self._rescale_from - 1) / (self.grid_size - 1)) ** self.data_dim
                self._rescale_from = None
        return self.grid_size

    def get_extra_state(self):
        return {"grid_size": int(self.grid_size), "sampling_rate_norm": float(self.sampling_rate_norm)}

    def set_extra_state(self, state) -> None:
        self.grid_size = int(state["grid_size"])
        self.sampling_rate_norm = float(state["sampling_rate_norm"])
        self._invalidate()

    # --- kernel ----------------------------------------------------------------------------------
    @property
    def kernel_channels(self) -> tuple[int, int]:
        """Leading dims of the sampled kernel, ``(C_out, C_in)``; the kernel net has their product outputs."""
        return (self.out_channels, self.in_channels)

    @property
    def kernel_size(self) -> tuple[int, ...] | None:
        """Kernel size used by the last forward (None before the first one for "same"/"full")."""
        if self._kernel_size is None and self.grid_size:
            return (self.grid_size,) * self.data_dim
        return self._kernel_size

    def _kernel_vectors(self, coords: torch.Tensor) -> list[torch.Tensor]:
        """Per-dimension coordinate vectors on which the kernel is sampled (full grid for CKConv)."""
        return [coords] * self.data_dim

    def _mask(self, vectors: list[torch.Tensor]) -> torch.Tensor | None:
        return None

    def _sample_kernel(self, x: torch.Tensor) -> torch.Tensor:
        n = self._resolve_grid(x)
        param = self.bias if self.bias is not None else next(self.kernel_net.parameters())
        coords = grids.coordinates(n, device=param.device, dtype=param.dtype)
        with profiled("dynamic_cropping"):
            vectors = self._kernel_vectors(coords)
        sizes = tuple(v.shape[0] for v in vectors)
        with profiled("kernel"):
            values = self.kernel_net(grids.cartesian_points(vectors))  # [P, prod(kernel_channels)]
            kernel = values.t().reshape(*self.kernel_channels, *sizes)
            if self.sampling_rate_norm != 1.0:
                kernel = kernel * self.sampling_rate_norm
        with profiled("mask"):
            mask = self._mask(vectors)
            if mask is not None:
                kernel = kernel * mask
        self._kernel_size = sizes
        return kernel

    # --- evaluation-time kernel cache ---------------------------------------------------------------
    def _cache_key(self, x: torch.Tensor) -> tuple:
        # Tensor version counters change on every in-place update (optimizer steps, load_state_dict's
        # copy_), so any parameter or buffer change invalidates the cached kernel; ``module.double()`` swaps
        # the tensors' data without touching the counters, hence the dtypes.
        state = tuple((id(t), t._version, t.dtype) for t in self.parameters()) + tuple(
            (id(t), t._version, t.dtype) for t in self.buffers()
        )
        return (self.grid_size, self.sampling_rate_norm, x.device, torch.is_autocast_enabled(), state)

    def _invalidate(self) -> None:
        self._eval_cache = None

    def train(self, mode: bool = True):
        self._invalidate()
        return super().train(mode)

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The ``[*kernel_channels, *kernel_size]`` kernel for input ``x`` (``[C_out, C_in, ...]`` here).

        In eval mode without autograd it is generated once and reused until a parameter changes,
        ``train()`` is called or a state dict is loaded.
        """
        if self.training or torch.is_grad_enabled():
            return self._sample_kernel(x)
        key = self._cache_key(x)
        if self._eval_cache is None or self._eval_cache[0] != key:
            kernel = self._sample_kernel(x)
            self._eval_cache = (key, kernel, self._kernel_size)
        _, kernel, self._kernel_size = self._eval_cache
        return kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, C_in, L]`` (1D) or ``[B, C_in, H, W]`` (2D) -> same spatial size, ``C_out`` channels."""
        if x.dim() != self.data_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input [B, {self.in_channels}, "
                f"{'L' if self.data_dim == 1 else 'H, W'}], got {tuple(x.shape)}"
            )
        with profiled(type(self).__name__.lower()):
            kernel = self.kernel(x)
            self.last_kernel = kernel
            with profiled("convolution"):
                return self._convolve(x, kernel)

    def _convolve(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """Apply the sampled ``kernel`` (and the bias) to ``x``: one dense convolution."""
        return convolve(x, kernel, self.bias, self.use_fft)

    def last_kernel_norm(self) -> torch.Tensor | None:
        """L2 norm of the kernel applied in the last forward (None before one); see ``kernel_norm_penalty``."""
        return None if self.last_kernel is None else self.last_kernel.norm()

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, data_dim={self.data_dim}, horizon={self.horizon!r}, "
                f"use_fft={self.use_fft!r}")


class FlexConv(CKConv):
    """Continuous kernel convolution with a learnable kernel size (FlexConv).

    The sampled kernel is multiplied by a Gaussian mask with learnable mean and width per dimension
    (2D: centred at 0; 1D: centred at +1 = the current time step), and with ``mask_dynamic_cropping`` the
    kernel is only sampled where the mask is above ``mask_threshold`` - one host synchronisation per
    forward decides the crop for all dimensions.

    Args (in addition to :class:`CKConv`):
        mask_use: multiply by the mask (False: CKConv-like full kernel, no mask parameters, no cropping).
        mask_type: ``"gaussian"`` (the only implemented type).
        mask_init_value: initial sigma of the mask (0.075 in the paper). It also sets the MAGNet/Gabor
            envelope-centre range to ``1.667 * mask_init_value`` around the mask centre.
        mask_threshold: mask value below which the kernel is cropped (0.1).
        mask_dynamic_cropping: crop the kernel to where the mask exceeds the threshold.
        mask_init_taps: None (the mask starts at ``mask_init_value``) or the initial kernel size in taps per
            dimension (odd in 2D): the mask is set as :meth:`crop_to` does, at construction for an int
            horizon, else at the first forward when the grid size is known. It keeps a converted
            ``k x k`` convolution at ``k x k`` whatever the resolution (:func:`ckconv.flexify`); with
            ``mask_init_value`` alone the initial crop shrinks with the grid (1 tap on grids of <= 13 taps,
            where the mask gets no gradient). A loaded state dict with a known grid takes precedence.

    Mask parameters (``mask_params``, shape ``[D, 2]`` of ``(mean, sigma)`` rows) are tagged ``"mask"`` so
    an optimiser can give them their own learning rate (see :func:`ckconv.nn.group_parameters_by_tag`).

    Shapes: as :class:`CKConv` (1D causal ``[B, C_in, L] -> [B, C_out, L]``, 2D "same" ``[B, C_in, H, W] ->
    [B, C_out, H, W]``); ``kernel_size`` is the current cropped size, ``grow_mask()`` / ``crop_to(taps)`` set it.

    Example::

        conv = FlexConv(3, 16, data_dim=2, horizon=33)          # paper defaults: MAGNet 32x3, mask 0.075
        y = conv(torch.randn(8, 3, 32, 32))                     # [8, 16, 32, 32]; conv.kernel_size == (5, 5)
        conv = FlexConv(3, 16, data_dim=2, horizon="same", mask_init_taps=3)
        y = conv(torch.randn(8, 3, 64, 64))                     # grid 65, kernel starts at (3, 3)
        seq = FlexConv(1, 30, data_dim=1, horizon="same", use_fft="auto")
        y = seq(torch.randn(8, 1, 784))                         # [8, 30, 784], causal; kernel starts at 64 taps
    """

    _param_tags = {"mask_params": "mask"}

    def __init__(self, in_channels: int, out_channels: int, data_dim: int = 2, horizon="same", *,
                 mask_use: bool = True, mask_type: str = "gaussian", mask_init_value: float = 0.075,
                 mask_threshold: float = 0.1, mask_dynamic_cropping: bool = True, mask_init_taps: int | None = None,
                 **ckconv_kwargs):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type={mask_type!r} is not valid; allowed: {', '.join(MASK_TYPES)}")
        if not mask_init_value > 0:
            raise ValueError(f"mask_init_value={mask_init_value!r} is not valid; allowed: a float > 0 (paper: 0.075)")
        if not 0 < mask_threshold < 1:
            raise ValueError(f"mask_threshold={mask_threshold!r} is not valid; allowed: 0 < threshold < 1")
        _check_data_dim(data_dim)
        if mask_init_taps is not None and (isinstance(mask_init_taps, bool) or not isinstance(mask_init_taps, int)
                                           or mask_init_taps < 1 or (data_dim == 2 and mask_init_taps % 2 == 0)
                                           or not mask_use):
            raise ValueError(f"mask_init_taps={mask_init_taps!r} is not valid; allowed: None or a positive int "
                             f"(odd in 2D), with mask_use=True")
        # Kernel-net envelopes start around the mask centre. In 1D the mask sits at +1; the
        # original centred the envelopes at 0 there, where the initial mask hides them.
        center = 1.0 if data_dim == 1 else 0.0
        ckconv_kwargs["kernel_init_spatial_value"] = 1.667 * mask_init_value
        super().__init__(in_channels, out_channels, data_dim, horizon, _init_spatial_center=center, **ckconv_kwargs)
        self.mask_use = bool(mask_use)
        self.dynamic_cropping = bool(mask_dynamic_cropping) and self.mask_use
        self.mask_threshold = float(mask_threshold)
        self._reach = grids.threshold_distance(self.mask_threshold)
        if self.mask_use:
            init = torch.tensor([[center, mask_init_value]] * data_dim)
            self.mask_params = nn.Parameter(init)
        else:
            self.mask_params = None
        self._pending_init_taps = mask_init_taps
        self._apply_init_taps()

    def _apply_init_taps(self) -> None:
        """Set the mask to ``mask_init_taps`` taps once the grid size is known (then never again)."""
        if self._pending_init_taps is not None and self.grid_size:
            taps, self._pending_init_taps = self._pending_init_taps, None
            self.crop_to(taps)

    def _resolve_grid(self, x: torch.Tensor) -> int:
        n = super()._resolve_grid(x)
        if self._pending_init_taps is not None:
            self._apply_init_taps()
        return n

    def set_extra_state(self, state) -> None:
        super().set_extra_state(state)
        if self.grid_size:  # a stored layer with a known grid has its own (trained) mask
            self._pending_init_taps = None

    @property
    def mask_mean(self) -> torch.Tensor | None:
        return None if self.mask_params is None else self.mask_params[:, 0].detach()

    @property
    def mask_sigma(self) -> torch.Tensor | None:
        return None if self.mask_params is None else effective_sigma(self.mask_params[:, 1]).detach()

    @property
    def kernel_size(self) -> tuple[int, ...] | None:
        if self._kernel_size is None and self.grid_size:
            coords = grids.coordinates(self.grid_size, device=self.bias.device if self.bias is not None else None)
            return tuple(v.shape[0] for v in self._kernel_vectors(coords))
        return self._kernel_size

    def _kernel_vectors(self, coords: torch.Tensor) -> list[torch.Tensor]:
        if not self.dynamic_cropping:
            return [coords] * self.data_dim
        n = coords.shape[0]
        causal = self.data_dim == 1
        starts = crop_starts(coords, self.mask_params.to(coords.dtype), self._reach, causal).tolist()  # 1 sync
        if causal:
            return [coords[starts[0]:]]
        return [coords[s: n - s] for s in starts]

    def _mask(self, vectors: list[torch.Tensor]) -> torch.Tensor | None:
        if not self.mask_use:
            return None
        return gaussian_mask(vectors, self.mask_params)

    @torch.no_grad()
    def grow_mask(self, margin: float = 1.05) -> None:
        """Set the mask so that cropping keeps the whole grid (a fully grown kernel).

        The mean goes to the centre (0 in 2D, +1 = the current step in 1D) and sigma to ``margin`` times
        the width at which the mask reaches the threshold at the far end of the grid (distance 1 in 2D,
        2 in 1D). Used to measure the cost of a trained model before training it. No-op without a mask.
        """
        if self.mask_params is None:
            return
        center, reach_to = (1.0, 2.0) if self.data_dim == 1 else (0.0, 1.0)
        self._set_mask(center, margin * reach_to / self._reach)

    @torch.no_grad()
    def crop_to(self, taps: int) -> None:
        """Set the mask so that cropping keeps ``taps`` taps per dimension (at most the grid; in 2D an odd
        number), as a mask trained to that width would: the cost of a partly grown kernel. Needs a known
        grid (an int horizon, or one forward) and a mask."""
        if self.mask_params is None or not self.grid_size:
            raise ValueError(f"crop_to needs a mask and a known grid size (mask_use={self.mask_use}, "
                             f"grid_size={self.grid_size})")
        n = self.grid_size
        if taps >= n:
            return self.grow_mask()
        spacing = 2.0 / (n - 1)
        # Half a grid step beyond the last kept coordinate, so rounding cannot drop it.
        if self.data_dim == 1:
            self._set_mask(1.0, ((taps - 1) * spacing + spacing / 2) / self._reach)
        else:
            self._set_mask(0.0, ((taps // 2) * spacing + spacing / 2) / self._reach)

    def _set_mask(self, mean: float, sigma: float) -> None:
        self.mask_params[:, 0] = mean
        self.mask_params[:, 1] = sigma
        self._kernel_size = None
        self._invalidate()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_threshold={self.mask_threshold}, dynamic_cropping={self.dynamic_cropping}"


class SeparableFlexConv(FlexConv):
    """Depthwise-separable FlexConv: a continuous depthwise kernel, then a pointwise 1x1 channel mix.

    The kernel net outputs ONE kernel per input channel (``C_in`` outputs instead of ``C_in * C_out``); it is
    masked and cropped exactly like :class:`FlexConv` (same mask parameters and ``"mask"`` tag, one host
    sync per forward, eval cache, ``set_horizon``, ``grow_mask``). Each channel is convolved with its own
    kernel (``groups=C_in`` spatially, a per-channel product with the FFT), then ``pointwise_weight``
    ``[C_out, C_in]`` and the bias ``[C_out]`` mix the channels - the separable structure of the
    continuous-kernel CNNs of Romero et al. (CCNN, ICLR 2023). The layer equals a dense convolution with
    :meth:`dense_kernel`, but its kernel net has ``C_out`` times fewer outputs and each output position costs
    ``C_in * (taps + C_out)`` multiply-adds instead of ``C_in * C_out * taps``.

    Arguments: those of :class:`FlexConv`. Parameters: the kernel net with ``C_in`` outputs, ``2 D`` mask
    parameters, ``C_out * C_in`` pointwise weights and ``C_out`` biases (with ``bias``).
    ``last_kernel`` and :meth:`kernel` give the depthwise kernel ``[C_in, 1, *kernel_size]``
    (``kernel_channels == (C_in, 1)``). Shapes: as :class:`FlexConv`.

    Example::

        conv = SeparableFlexConv(16, 32, data_dim=2, horizon=33)
        y = conv(torch.randn(8, 16, 32, 32))     # [8, 32, 32, 32]
        conv.last_kernel.shape                   # [16, 1, 5, 5]; conv.dense_kernel().shape == [32, 16, 5, 5]
    """

    def __init__(self, in_channels: int, out_channels: int, data_dim: int = 2, horizon="same", **flexconv_kwargs):
        super().__init__(in_channels, out_channels, data_dim, horizon, **flexconv_kwargs)
        # torch's default init of a 1x1 nn.Conv (kaiming-uniform, a = sqrt(5)): U(-1/sqrt(C_in), 1/sqrt(C_in)).
        bound = 1.0 / math.sqrt(in_channels)
        self.pointwise_weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))

    @property
    def kernel_channels(self) -> tuple[int, int]:
        """``(C_in, 1)``: one kernel per input channel, in PyTorch's ``groups=C_in`` weight layout."""
        return (self.in_channels, 1)

    def _convolve(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution with ``kernel`` (no bias), then the 1x1 channel mix with the bias."""
        return pointwise(convolve(x, kernel, None, self.use_fft, depthwise=True), self.pointwise_weight, self.bias)

    def dense_kernel(self, kernel: torch.Tensor | None = None) -> torch.Tensor:
        """The ``[C_out, C_in, *kernel_size]`` kernel of the equivalent dense convolution,
        ``pointwise_weight[o, i] * kernel[i]`` (``kernel``: a depthwise kernel, default ``last_kernel``)."""
        kernel = self.last_kernel if kernel is None else kernel
        if kernel is None:
            raise RuntimeError("dense_kernel() needs a kernel: run a forward first or pass one")
        taps = kernel.shape[2:]
        return self.pointwise_weight.view(*self.pointwise_weight.shape, *([1] * len(taps))) * kernel[:, 0]

    def last_kernel_norm(self) -> torch.Tensor | None:
        """L2 norm of :meth:`dense_kernel`, computed without building it.

        ``||W[o, i] k_i||^2 = sum_i ||k_i||^2 ||W[:, i]||^2``. Penalising the depthwise kernel alone would be
        meaningless: scaling it down and ``pointwise_weight`` up leaves the layer unchanged.
        """
        if self.last_kernel is None:
            return None
        per_channel = torch.linalg.vector_norm(self.last_kernel.flatten(1), dim=1)  # [C_in]
        mixing = torch.linalg.vector_norm(self.pointwise_weight, dim=0)             # [C_in]
        return torch.linalg.vector_norm(per_channel * mixing)
