"""Figures of what a network learned: its kernels, FlexConv masks, kernel sizes and N-Jet scales.

Public API::

    draw_model_figures(model, out_dir, *, input_shape=None) -> list[Path]
    draw_kernel_size_curve(metrics_path, out_path, layer_order=None) -> Path | None
    write_run_figures(model, out_dir, metrics_path=None, *, input_shape=None) -> list[Path]   # never raises

Files (those that apply to the model; docs/FIGURES.md says how to read them):

* ``kernels.png``: per CKConv/FlexConv layer (one row each) a few (output ← input) channel pairs of the
  sampled kernel, cropped (what the layer convolves with) and on the whole horizon grid.
* ``masks.png``: per FlexConv layer with a mask the Gaussian mask over the grid, the cropping threshold
  and the crop, with the learned sigma and mean.
* ``kernel_size_per_layer.png``: per CKConv/FlexConv/SRF layer the kernel size next to its horizon.
* ``srf_scales.png``: per SRF (N-Jet) layer the learned scale sigma.
* ``kernel_sizes_over_training.png``: from a run's ``metrics.jsonl``, the kernel size of every
  FlexConv/SRF layer against the epoch.

The model is only read: kernels are sampled with the layers in eval mode (restored afterwards), and
layers whose ``"same"``/``"full"`` horizon is not resolved yet (no forward so far) are resolved on a copy
of the model by one forward of zeros of ``input_shape`` (``(C, L)`` or ``(C, H, W)``, no batch
dimension); without ``input_shape`` those layers are left out with a printed note. Figures are drawn
with matplotlib's Agg canvas directly (no pyplot: no display, the caller's backend is left alone) and
written atomically, so a reader never sees half a PNG.
"""
from __future__ import annotations

import copy
import json
import math
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from torch import nn

from ckconv import CKConv, FlexConv, SRFConv
from ckconv.nn.grids import cartesian_points, coordinates
from ckconv.nn.mask import gaussian_mask
from datasets.paths import atomic_write

KERNELS = "kernels.png"
MASKS = "masks.png"
SIZES_PER_LAYER = "kernel_size_per_layer.png"
SRF_SCALES = "srf_scales.png"
SIZES_OVER_TRAINING = "kernel_sizes_over_training.png"

MAX_CHANNEL_PAIRS = 4  # kernels drawn per layer
DPI = 100
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "figure.titlesize": 10}
CROP_COLOUR = "tab:orange"
THRESHOLD_COLOUR = {True: "white", False: "tab:red"}  # by "is 2D": white reads on the viridis mask image


# --- what the layers hold ------------------------------------------------------------------------------
@dataclass
class KernelView:
    """One CKConv/FlexConv layer's kernels as numpy arrays ``[C_out, C_in, *taps]``."""

    name: str
    layer: CKConv
    cropped: np.ndarray  # the kernel the layer convolves with
    full: np.ndarray     # the kernel with cropping switched off (mask still applied) on the whole horizon grid

    @property
    def data_dim(self) -> int:
        return self.layer.data_dim

    @property
    def horizon(self) -> int:
        return self.layer.grid_size

    @property
    def crop(self) -> tuple[int, ...]:
        return tuple(self.cropped.shape[2:])

    @property
    def crops(self) -> bool:
        """Whether this layer crops at all (a CKConv or an unmasked FlexConv always uses the full grid)."""
        return isinstance(self.layer, FlexConv) and self.layer.dynamic_cropping


@contextmanager
def _evaluating(module: nn.Module):
    """Eval mode for the duration (a BatchNorm inside an MLP kernel net must not update its statistics)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def full_grid_kernel(layer: CKConv, channels: tuple[int, int]) -> torch.Tensor:
    """The layer's kernel sampled on its whole horizon grid, times the mask, without cropping.

    The same sampling as the layer's own (kernel net on the grid, ``sampling_rate_norm``, mask), only
    over all ``grid_size`` taps; inside the crop it equals ``layer.kernel(x)``, whose two leading dims
    are ``channels`` (``(C_out, C_in)``; ``(C_in, 1)`` for a depthwise kernel).
    """
    param = next(layer.kernel_net.parameters())
    coords = coordinates(layer.grid_size, device=param.device, dtype=param.dtype)
    vectors = [coords] * layer.data_dim
    values = layer.kernel_net(cartesian_points(vectors))  # [taps, prod(channels)]
    kernel = values.t().reshape(*channels, *[layer.grid_size] * layer.data_dim)
    kernel = kernel * layer.sampling_rate_norm
    if isinstance(layer, FlexConv) and layer.mask_params is not None:
        kernel = kernel * gaussian_mask(vectors, layer.mask_params)
    return kernel


@torch.no_grad()
def kernel_views(model: nn.Module) -> list[KernelView]:
    """Cropped and full kernels of every CKConv/FlexConv whose grid is known, in module order.

    A layer that convolves with one kernel per input channel and then mixes channels (SeparableFlexConv)
    is shown through its ``dense_kernel``: the ``[C_out, C_in]`` kernel of the equivalent dense convolution.
    """
    views = []
    for name, layer in model.named_modules():
        if not isinstance(layer, CKConv) or not layer.grid_size:
            continue
        with _evaluating(layer):
            probe = torch.zeros(1, layer.in_channels, *[layer.grid_size] * layer.data_dim,
                                device=next(layer.parameters()).device)
            cropped = layer.kernel(probe)
            full = full_grid_kernel(layer, tuple(cropped.shape[:2]))
            dense = getattr(layer, "dense_kernel", None)
            if dense is not None:
                cropped, full = dense(cropped), dense(full)
        views.append(KernelView(name, layer, cropped.float().cpu().numpy(), full.float().cpu().numpy()))
    return views


def layer_names(model: nn.Module) -> list[str]:
    """Names of the model's modules in registration order (= depth order for this project's networks)."""
    return [name for name, _ in model.named_modules()]


def srf_layers(model: nn.Module) -> list[tuple[str, SRFConv]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, SRFConv)]


def _with_resolved_grids(model: nn.Module, input_shape) -> nn.Module:
    """``model``, or a copy whose "same"/"full" horizons are resolved by one forward of zeros."""
    unresolved = [name for name, module in model.named_modules() if isinstance(module, CKConv) and not module.grid_size]
    if not unresolved:
        return model
    if input_shape is None:
        print(f"note: {len(unresolved)} layer(s) with horizon 'same'/'full' have not seen an input yet "
              f"({', '.join(unresolved[:3])}{', ...' if len(unresolved) > 3 else ''}); their figures are left "
              f"out (pass input_shape to resolve them)")
        return model
    twin = copy.deepcopy(model).eval()
    param = next(twin.parameters())
    with torch.no_grad():
        twin(torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype))
    return twin


def channel_pairs(out_channels: int, in_channels: int, count: int = MAX_CHANNEL_PAIRS) -> list[tuple[int, int]]:
    """Up to ``count`` distinct (output, input) channel pairs, the same ones at every epoch: (0, 0), (1, 1), ...
    wrapping around the smaller channel count."""
    return list(dict.fromkeys((k % out_channels, k % in_channels) for k in range(count)))


# --- matplotlib plumbing -------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    """A single-panel figure laid out by matplotlib."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _panel_grid(n_rows: int, n_columns: int, panel: tuple[float, float], gap: tuple[float, float],
                margins: tuple[float, float, float, float]) -> tuple[Figure, np.ndarray]:
    """A figure with ``n_rows x n_columns`` equal panels; sizes in inches, margins (left, right, top, bottom).

    Laid out by hand: constrained layout needs ~10 s on a laptop CPU for the ~120 panels of a FlexNet-7.
    """
    (width, height), (gap_x, gap_y), (left, right, top, bottom) = panel, gap, margins
    fig_w = left + n_columns * width + (n_columns - 1) * gap_x + right
    fig_h = top + n_rows * height + (n_rows - 1) * gap_y + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_columns, squeeze=False, gridspec_kw=dict(
        left=left / fig_w, right=1 - right / fig_w, top=1 - top / fig_h, bottom=bottom / fig_h,
        wspace=gap_x / width, hspace=gap_y / height))
    return fig, axes


def _colorbar_beside(fig: Figure, image, axes, label: str) -> None:
    """A colorbar 0.1 inch to the right of the last of ``axes``, as tall as they are."""
    fig_w, _ = fig.get_size_inches()
    last, first = axes[-1].get_position(), axes[0].get_position()
    bottom, top = min(last.y0, first.y0), max(last.y1, first.y1)
    cax = fig.add_axes((last.x1 + 0.1 / fig_w, bottom, 0.12 / fig_w, top - bottom))
    fig.colorbar(image, cax=cax, label=label)


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG atomically, so a reader (W&B, a viewer) never sees half of it."""
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png")
    return path


def _offsets(taps: int, causal: bool) -> np.ndarray:
    """Relative position of each tap: 1D causal ``-(taps - 1) .. 0`` (0 = current step), 2D centred on 0."""
    return np.arange(taps) - (taps - 1 if causal else (taps - 1) / 2)


def _image_extent(shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow extent putting pixel centres on tap offsets (rows = first kernel axis = dy, top = most negative)."""
    hy, hx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    return (-hx - 0.5, hx + 0.5, hy + 0.5, -hy - 0.5)


def _size_text(sizes) -> str:
    return "×".join(str(int(s)) for s in sizes)


def _crop_rectangle(ax, crop: tuple[int, int], **style) -> None:
    hy, hx = (crop[0] - 1) / 2 + 0.5, (crop[1] - 1) / 2 + 0.5
    ax.add_patch(Rectangle((-hx, -hy), 2 * hx, 2 * hy, fill=False, **style))


# --- kernels -------------------------------------------------------------------------------------------
def draw_kernels(views: list[KernelView], path: Path) -> Path:
    """``kernels.png``: one row per layer (2D: images, 1D: curves), cropped and full."""
    with matplotlib.rc_context(STYLE):
        return _save(_kernels_2d(views) if views[0].data_dim == 2 else _kernels_1d(views), path)


def _kernels_2d(views: list[KernelView]) -> Figure:
    """A table: rows = layers, columns = channel pairs, cropped ones first (when any layer crops)."""
    groups = ["cropped", "full"] if any(view.crops for view in views) else ["full"]
    n_pairs = max(len(channel_pairs(*view.full.shape[:2])) for view in views)
    fig, axes = _panel_grid(len(views), n_pairs * len(groups), panel=(1.3, 1.3), gap=(0.3, 0.35),
                            margins=(1.0, 0.9, 1.0, 0.45))
    fig.suptitle("Sampled kernels: one row per layer, a few (output ← input) channel pairs per row\n"
                 + ("cropped = what the layer convolves with; full = the masked kernel on its whole horizon, "
                    "dashed = the crop\n" if len(groups) == 2 else "")
                 + "colour scale per row, symmetric around 0 (red > 0 > blue)", y=1 - 0.08 / fig.get_figheight(),
                 va="top")
    for r, (row, view) in enumerate(zip(axes, views)):
        vmax = float(np.abs(view.full).max()) or 1.0  # the full kernel contains the cropped one
        image = None
        for g, group in enumerate(groups):
            kernel = view.cropped if group == "cropped" else view.full
            for j, (o, i) in enumerate(channel_pairs(*kernel.shape[:2])):
                ax = row[g * n_pairs + j]
                if group == "cropped" and not view.crops:
                    continue  # a layer that never crops, in a model whose other layers do: "full" shows it
                image = ax.imshow(kernel[o, i], extent=_image_extent(kernel.shape[2:]), cmap="RdBu_r",
                                  vmin=-vmax, vmax=vmax, interpolation="nearest")
                if group == "full" and view.crops:
                    _crop_rectangle(ax, view.crop, edgecolor="k", linestyle="--", linewidth=0.8)
                if r == 0:
                    ax.set_title(f"{group}\nout {o} ← in {i}")
                # Panels of one group share their extent: tick labels on the group's first panel only.
                ax.tick_params(labelleft=j == 0, labelbottom=j == 0, length=2)
        for ax in row:
            ax.set_visible(bool(ax.images))
        row[0].set_ylabel(f"{view.name} ({type(view.layer).__name__})\n{_size_text(view.crop)} of "
                          f"{_size_text(view.full.shape[2:])}\ndy (taps)")
        _colorbar_beside(fig, image, row, "kernel value")
    for ax in axes[-1]:
        ax.set_xlabel("dx (taps)")
    return fig


def _kernels_1d(views: list[KernelView]) -> Figure:
    fig, axes = _panel_grid(len(views), 2, panel=(4.6, 1.5), gap=(0.6, 0.75), margins=(0.7, 0.2, 0.85, 0.5))
    fig.suptitle("Sampled kernels, one row per layer, for a few (output ← input) channel pairs\n"
                 "left: what the layer convolves with; right: the masked kernel on its whole horizon "
                 "(shaded: the part kept by cropping)", y=1 - 0.08 / fig.get_figheight(), va="top")
    for (left, right), view in zip(axes, views):
        marker = "o" if view.crop[0] <= 32 else None  # a short kernel: show where its taps are
        for o, i in channel_pairs(*view.full.shape[:2]):
            left.plot(_offsets(view.crop[0], True), view.cropped[o, i], label=f"out {o} ← in {i}", linewidth=1,
                      marker=marker, markersize=2.5)
            right.plot(_offsets(view.horizon, True), view.full[o, i], linewidth=1)
        if view.crops:
            right.axvspan(-(view.crop[0] - 0.5), 0.5, color=CROP_COLOUR, alpha=0.2, linewidth=0)
        right.sharey(left)
        left.set_title(f"{view.name} ({type(view.layer).__name__}): convolves with {view.crop[0]} taps")
        right.set_title(f"{view.name}: whole horizon of {view.horizon} taps")
        left.set_ylabel("kernel value")
        for ax in (left, right):
            ax.axhline(0, color="0.6", linewidth=0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 0].legend(loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("relative position (taps; 0 = current step, negative = past)")
    return fig


# --- masks ---------------------------------------------------------------------------------------------
def draw_masks(views: list[KernelView], path: Path) -> Path:
    """``masks.png``: the Gaussian mask of every masked FlexConv over its grid, threshold and crop marked."""
    two_d = views[0].data_dim == 2
    columns = min(len(views), 4)
    n_rows = math.ceil(len(views) / columns)
    with matplotlib.rc_context(STYLE):
        fig, grid = _panel_grid(n_rows, columns, panel=(2.0, 2.0) if two_d else (2.8, 1.6), gap=(0.55, 1.15),
                                margins=(0.6, 1.0 if two_d else 0.2, 1.45, 0.9))
        fig.suptitle("FlexConv Gaussian masks over the kernel grid (σ, μ in grid units: the horizon "
                     "spans [-1, 1])\nthe kernel is cropped where the mask falls below the threshold",
                     y=1 - 0.08 / fig.get_figheight(), va="top")
        axes = grid.ravel()
        for ax in axes[len(views):]:
            ax.set_visible(False)
        for ax, view in zip(axes, views):
            image = _mask_panel_2d(ax, view) if two_d else _mask_panel_1d(ax, view)
        if two_d:
            _colorbar_beside(fig, image, grid[:, -1], "mask value")
        threshold = views[0].layer.mask_threshold
        handles = [Line2D([], [], color=THRESHOLD_COLOUR[two_d], linestyle=":", label=f"mask = threshold {threshold:g}"),
                   Patch(facecolor="none" if two_d else CROP_COLOUR, alpha=1 if two_d else 0.3,
                         edgecolor=CROP_COLOUR, linestyle="--" if two_d else "-", label="kept by cropping")]
        legend = fig.legend(handles=handles, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 0.0))
        if two_d:
            legend.get_frame().set_facecolor("0.75")  # the white threshold line must show on the legend
        return _save(fig, path)


def _mask_title(view: KernelView) -> str:
    def values(tensor, spec: str) -> str:  # one value per dimension: "0.075" in 1D, "(0.075, 0.081)" in 2D
        text = ", ".join(format(float(v), spec) for v in tensor)
        return text if len(tensor) == 1 else f"({text})"

    sigma, mean = values(view.layer.mask_sigma, ".3f"), values(view.layer.mask_mean, "+.2f")
    grid = _size_text(view.full.shape[2:])
    return f"{view.name}\nσ = {sigma}\nμ = {mean}\ncrop {_size_text(view.crop)} of {grid} taps"


def _mask_values(view: KernelView) -> np.ndarray:
    layer = view.layer
    with torch.no_grad():
        coords = coordinates(layer.grid_size, device=layer.mask_params.device, dtype=layer.mask_params.dtype)
        return gaussian_mask([coords] * layer.data_dim, layer.mask_params).float().cpu().numpy()


def _mask_panel_2d(ax, view: KernelView) -> AxesImage:
    mask = _mask_values(view)
    image = ax.imshow(mask, extent=_image_extent(mask.shape), cmap="viridis", vmin=0.0, vmax=1.0,
                      interpolation="nearest")
    threshold = view.layer.mask_threshold
    if mask.min() < threshold < mask.max():  # no contour to draw when the whole grid is above (or below) it
        offsets = [_offsets(n, False) for n in mask.shape]
        ax.contour(offsets[1], offsets[0], mask, levels=[threshold], colors=THRESHOLD_COLOUR[True], linestyles=":",
                   linewidths=1)
    _crop_rectangle(ax, view.crop, edgecolor=CROP_COLOUR, linestyle="--", linewidth=1.2)
    ax.set_title(_mask_title(view))
    ax.set_xlabel("dx (taps)")
    ax.set_ylabel("dy (taps)")
    return image


def _mask_panel_1d(ax, view: KernelView) -> None:
    mask = _mask_values(view)
    ax.plot(_offsets(view.horizon, True), mask, color="tab:blue", linewidth=1.2)
    ax.axhline(view.layer.mask_threshold, color=THRESHOLD_COLOUR[False], linestyle=":", linewidth=1)
    ax.axvspan(-(view.crop[0] - 0.5), 0.5, color=CROP_COLOUR, alpha=0.3, linewidth=0)
    ax.set_ylim(0, 1.05)
    ax.set_title(_mask_title(view))
    ax.set_xlabel("relative position (taps; 0 = current step)")
    ax.set_ylabel("mask value")


# --- sizes and scales ----------------------------------------------------------------------------------
def draw_sizes_per_layer(views: list[KernelView], srfs: list[tuple[str, SRFConv]], path: Path) -> Path:
    """``kernel_size_per_layer.png``: bars of the kernel size (per dimension) in front of the horizon."""
    with torch.no_grad():
        rows = [(view.name, view.crop, view.horizon) for view in views]
        rows += [(name, tuple(layer.kernel().shape[2:]), None) for name, layer in srfs]
    dims = len(rows[0][1])
    x = np.arange(len(rows))
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(5.0, 0.3 * len(rows) * dims + 2.5), 4.2)
        ax = fig.subplots()
        horizons = [(i, h) for i, (_, _, h) in enumerate(rows) if h]
        if horizons:
            ax.bar([i for i, _ in horizons], [h for _, h in horizons], width=0.85, color="0.88", edgecolor="0.6",
                   label="horizon (kernel grid)")
        width = 0.8 / dims
        names = ["kernel size"] if dims == 1 else ["kernel height", "kernel width"]
        for d in range(dims):
            bars = ax.bar(x - 0.4 + width * (d + 0.5), [size[d] for _, size, _ in rows], width=width, label=names[d])
            ax.bar_label(bars, fontsize=6, padding=1)
        ax.set_xticks(x, [name for name, _, _ in rows], rotation=45, ha="right")
        ax.set_xlabel("layer")
        ax.set_ylabel("kernel size (taps)" if dims == 1 else "kernel size (taps per side)")
        ax.set_title("Kernel size per layer, inside its horizon (the largest size it can reach)")
        ax.set_ylim(0, 1.2 * ax.get_ylim()[1])  # headroom for the legend above the tallest bar
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper center", ncols=3)
        return _save(fig, path)


def draw_srf_scales(srfs: list[tuple[str, SRFConv]], path: Path) -> Path:
    """``srf_scales.png``: the learned scale sigma of every N-Jet (SRF) layer."""
    with torch.no_grad():
        sigmas = [float(layer.sigma()) for _, layer in srfs]
    with matplotlib.rc_context(STYLE):
        fig = _figure(max(5.0, 0.45 * len(srfs) + 2.5), 4.0)
        ax = fig.subplots()
        bars = ax.bar(np.arange(len(srfs)), sigmas, color="tab:purple")
        ax.bar_label(bars, labels=[f"{s:.2f}" for s in sigmas], fontsize=6, padding=1)
        ax.set_xticks(np.arange(len(srfs)), [name for name, _ in srfs], rotation=45, ha="right")
        ax.set_xlabel("layer")
        ax.set_ylabel("scale σ (pixels)")
        ax.set_title(f"N-Jet (SRF) learned scale per layer (the kernel reaches about ±{srfs[0][1].init_k:g}σ)")
        return _save(fig, path)


# --- kernel sizes over training ------------------------------------------------------------------------
def read_metrics(path: str | Path) -> list[dict]:
    """The epoch records of a ``metrics.jsonl`` (unreadable lines, e.g. a killed run's last one, skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "epoch" in record:
            records.append(record)
    return records


def size_history(records: list[dict]) -> tuple[np.ndarray, dict[str, np.ndarray], list[tuple[float, str]]]:
    """Kernel sizes per layer against a continuing epoch axis.

    Returns ``x`` (epochs; a cross-resolution run's phases follow each other: fine-tuning epoch 1 comes
    after the last source epoch), ``{layer: [len(x), dims] sizes, NaN where unknown}`` and the phase
    starts ``[(x position of the boundary, phase name)]``.
    """
    x, boundaries = [], []
    offset, last_epoch, phase = 0, 0, None
    for record in records:
        if record.get("phase") != phase:
            if phase is not None:
                offset += last_epoch
                boundaries.append((offset + 0.5, str(record.get("phase"))))
            phase = record.get("phase")
        last_epoch = int(record["epoch"])
        x.append(offset + last_epoch)
    names = list(dict.fromkeys(name for record in records for name in (record.get("kernel_sizes") or {})))
    dims = max((len(size) for record in records for size in (record.get("kernel_sizes") or {}).values() if size),
               default=1)
    sizes = {}
    for name in names:
        series = np.full((len(records), dims), np.nan)
        for row, record in enumerate(records):
            size = (record.get("kernel_sizes") or {}).get(name)
            if size:
                series[row, :len(size)] = size
        if not np.isnan(series).all():
            sizes[name] = series
    return np.asarray(x, dtype=float), sizes, boundaries


def depth_order(names, layer_order: list[str] | None = None) -> list[str]:
    """``names`` in the order of ``layer_order`` (the model's module names); names it lacks follow, sorted
    naturally ("blocks.2" before "blocks.10")."""
    rank = {name: index for index, name in enumerate(layer_order or [])}

    def key(name: str):
        return rank.get(name, len(rank)), [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    return sorted(names, key=key)


def draw_kernel_size_curve(metrics_path: str | Path, out_path: str | Path,
                           layer_order: list[str] | None = None) -> Path | None:
    """``kernel_sizes_over_training.png`` from a run's ``metrics.jsonl``: one line per layer.

    metrics.jsonl stores layers alphabetically; ``layer_order`` (the model's module names in forward
    order, as :func:`write_run_figures` passes them) restores the depth order of colours and legend,
    else names are sorted naturally. Returns None (and writes nothing) when the file does not exist or
    records no kernel size (models without FlexConv/SRF layers). In 2D a layer gets a dashed second
    line for its width where its height and width ever differ.
    """
    metrics_path, out_path = Path(metrics_path), Path(out_path)
    if not metrics_path.is_file():
        return None
    x, sizes, boundaries = size_history(read_metrics(metrics_path))
    if not sizes:
        return None
    sizes = {name: sizes[name] for name in depth_order(sizes, layer_order)}
    dims = next(iter(sizes.values())).shape[1]
    with matplotlib.rc_context(STYLE):
        fig = _figure(9, 4.8)
        ax = fig.subplots()
        colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(sizes)))
        marker = "o" if len(x) <= 30 else None
        # One line segment per phase: the horizon (and so the size in taps) jumps at a phase start.
        edges = [-np.inf, *(position for position, _ in boundaries), np.inf]
        phases = [(x > low) & (x < high) for low, high in zip(edges[:-1], edges[1:])]
        for colour, (name, series) in zip(colours, sizes.items()):
            square = dims == 1 or np.allclose(series[:, 0], series[:, 1], equal_nan=True)
            for index, rows in enumerate(phases):
                ax.plot(x[rows], series[rows, 0], color=colour, marker=marker, markersize=3, linewidth=1.2,
                        label=(name if square else f"{name} (height)") if index == 0 else None)
                if not square:
                    ax.plot(x[rows], series[rows, 1], color=colour, linestyle="--", linewidth=1.0, marker=marker,
                            markersize=3, markerfacecolor="none", label=f"{name} (width)" if index == 0 else None)
        for position, phase in boundaries:
            ax.axvline(position, color="k", linestyle=":", linewidth=1)
            ax.annotate(f"{phase} starts", (position, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                        textcoords="offset points", fontsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch" + (" (phases one after the other; the horizon changes at a phase start)"
                                 if boundaries else ""))
        ax.set_ylabel("kernel size (taps)" if dims == 1 else "kernel size (taps per side)")
        ax.set_title("Learned kernel size over training (colour: depth, dark = first layer in the legend)")
        fig.legend(loc="outside right upper", ncols=1 if len(sizes) <= 16 else 2)
        return _save(fig, out_path)


# --- entry points --------------------------------------------------------------------------------------
def _model_figures(model: nn.Module, out_dir: Path, input_shape):
    """Draw the figures that apply to ``model``, yielding each path as soon as it is written."""
    model = _with_resolved_grids(model, input_shape)
    views = kernel_views(model)
    srfs = srf_layers(model)
    if views:
        yield draw_kernels(views, out_dir / KERNELS)
    masked = [view for view in views if isinstance(view.layer, FlexConv) and view.layer.mask_params is not None]
    if masked:
        yield draw_masks(masked, out_dir / MASKS)
    if views or srfs:
        yield draw_sizes_per_layer(views, srfs, out_dir / SIZES_PER_LAYER)
    if srfs:
        yield draw_srf_scales(srfs, out_dir / SRF_SCALES)


def draw_model_figures(model: nn.Module, out_dir: str | Path, *, input_shape=None) -> list[Path]:
    """Draw every figure that applies to ``model`` into ``out_dir`` and return their paths.

    ``kernels.png`` and ``kernel_size_per_layer.png`` for models with CKConv/FlexConv layers,
    ``masks.png`` for masked FlexConvs, ``srf_scales.png`` (and the sizes) for N-Jet layers; nothing
    for models without such layers (CIFAR ResNets, ``conv.type=Conv``). ``input_shape`` (``(C, L)`` or
    ``(C, H, W)``) resolves "same"/"full" horizons of a model that has not run yet. Raises on errors;
    see :func:`write_run_figures` for the variant that never does.
    """
    return list(_model_figures(model, Path(out_dir), input_shape))


def write_run_figures(model: nn.Module, out_dir: str | Path, metrics_path: str | Path | None = None, *,
                      input_shape=None) -> list[Path]:
    """All figures of a run: :func:`draw_model_figures` plus, given ``metrics_path``, the kernel sizes over
    training. Never raises: an error becomes one printed warning line and the figures written before it
    are returned (a broken figure must not fail a training run)."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    try:
        for path in _model_figures(model, out_dir, input_shape):
            written.append(path)
        if metrics_path is not None:
            curve = draw_kernel_size_curve(metrics_path, out_dir / SIZES_OVER_TRAINING, layer_names(model))
            if curve is not None:
                written.append(curve)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        print(f"warning: could not draw figures: {type(error).__name__}: {message}", file=sys.stderr, flush=True)
    return written
