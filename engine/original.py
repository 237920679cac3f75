"""Checkpoints of the original FlexConv code: recognised by their content and mapped onto this project's models.

The original's trainer saves ``torch.save({"model": state_dict, "optimizer": ..., "lr_scheduler": ...,
"epoch": ...})``: exactly those four keys, the network's ``state_dict()`` under the original's module names, and
only tensors, numbers, dicts and lists, so it loads with ``torch.load(weights_only=True)`` like our own files
(:func:`engine.checkpoint.load_checkpoint`). Its ``epoch`` is the best epoch (``checkpoint.pt``) or None
(``final_model.pt``, saved after training); its Adam state cannot be matched to parameters (the original ordered
them by Python set iteration) and its warm-up scheduler saved no state, so only the weights carry over.

:data:`RULES` is the whole mapping, one table: how each of the original's names becomes ours, which values
change layout, and which conventions were checked and found equal. :func:`map_original` applies it to a file
for a model built from the configuration and reports everything that does not fit (:class:`MappedWeights`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from ckconv import CKConv, FlexConv, SRFConv
from ckconv.nn.kernelnets import SIREN, FourierNet, GaborNet, MAGNet

ORIGINAL_KEYS = frozenset({"model", "optimizer", "lr_scheduler", "epoch"})
ORIGINAL_FORMAT = "flexconv-original"  # the format name this project gives such a file once it is read

# Our network classes, by the name the rules below use (net.type=ResNet builds FlexNet, TCN builds TCN, ...).
FLEXNET, TCN, CIFAR_RESNET, IMAGENET_RESNET = "FlexNet", "TCN", "CIFARResNet", "ImageNetResNet"


def is_original(checkpoint: Any) -> bool:
    """A checkpoint of the original code: a dict with exactly ``model``, ``optimizer``, ``lr_scheduler`` and
    ``epoch``, whose ``model`` is a state dict (names -> tensors)."""
    return (isinstance(checkpoint, dict) and set(checkpoint) == ORIGINAL_KEYS
            and isinstance(checkpoint["model"], Mapping) and len(checkpoint["model"]) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint["model"].items()))


# --- value conversions ---------------------------------------------------------------------------------
def _linear_from_1x1_conv(value: torch.Tensor) -> torch.Tensor:
    """Kernel-net linears are 1x1 convolutions there (``[out, in, 1]`` / ``[out, in, 1, 1]``), ``nn.Linear``
    here (``[out, in]``): the same numbers. Biases pass unchanged."""
    if value.dim() > 2 and all(size == 1 for size in value.shape[2:]):
        return value.reshape(value.shape[0], value.shape[1])
    return value


def _scalar(value: torch.Tensor) -> torch.Tensor:
    """A one-element tensor ``[1]`` there, a 0-d tensor here (SIREN omega_0, N-Jet scale)."""
    return value.reshape(()) if value.numel() == 1 else value


# --- the table -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One line of the mapping. ``pattern`` is a regular expression on the original's name (as rewritten by the
    rules above it); ``ours`` replaces the matched part (a ``re`` template, a function of the match and the
    :class:`_Context`, or None: the same name). ``networks``: our network classes it applies to (empty: all).
    ``role``: ``tensor`` (a tensor of ours), ``grid`` / ``threshold`` (a buffer checked against the configured
    layer, see :func:`map_original`) or ``unused`` (a buffer the original never read)."""

    pattern: str
    ours: Union[str, Callable, None]
    what: str
    networks: tuple[str, ...] = ()
    convert: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    role: str = "tensor"


def _cifar_block(match: re.Match, ctx: "_Context") -> str:
    per_stage = len(ctx.model.layers) // 3
    return f"layers.{(int(match.group(1)) - 1) * per_stage + int(match.group(2))}."


def _siren_linear(match: re.Match, ctx: "_Context") -> str:
    index = int(match.group(1))
    if index == ctx.last_siren_index():
        return f".kernel_net.output_linear.{match.group(2)}"
    return f".kernel_net.layers.{index // 2}.linear.{match.group(2)}"


def _siren_omega(match: re.Match, ctx: "_Context") -> str:
    return f".kernel_net.layers.{int(match.group(1)) // 2}.omega_0"


RULES: tuple[Rule, ...] = (
    # Networks: where each module of the original lives here (names anchored at the start).
    Rule(r"^cconv1\.", "stem.0.", "Img_ResNet stem conv `cconv1` is `stem.0`", (FLEXNET,)),
    Rule(r"^norm1\.", "stem.1.", "Img_ResNet stem norm `norm1` is `stem.1`", (FLEXNET,)),
    Rule(r"^blocks\.(\d+)\.cconv([12])\.", r"blocks.\1.conv\2.", "block convs `cconv1/2` are `conv1/2`", (FLEXNET,)),
    Rule(r"^backbone\.(\d+)\.cconv([12])\.", r"blocks.\1.conv\2.", "TCN blocks `backbone.<i>` are `blocks.<i>`",
         (TCN,)),
    Rule(r"^backbone\.(\d+)\.(norm[12])\.", r"blocks.\1.\2.", "TCN block norms", (TCN,)),
    Rule(r"^(?:blocks|backbone)\.(\d+)\.shortcut\.0\.", r"blocks.\1.shortcut.",
         "width-changing shortcut: a Sequential holding the 1x1 conv there, the conv itself here", (FLEXNET, TCN)),
    Rule(r"^out_layer\.", None, "Img_ResNet readout: a 1x1 conv `[classes, C, 1, 1]` (`[classes, C, 1]` in 1D) in "
         "both, after global average pooling (2D) or on the last step (1D)", (FLEXNET,)),
    Rule(r"^finallyr\.", "out_layer.", "TCN readout: `nn.Linear [classes, C]` on the last step in both", (TCN,)),
    Rule(r"^layer([1-3])\.(\d+)\.", _cifar_block, "CIFAR ResNet: stage s block i is `layers.<(s-1) n + i>` (one "
         "Sequential of 3n blocks); `conv1`, `bn1`, `linear` keep their names; option-A shortcuts have no "
         "parameters in either", (CIFAR_RESNET,)),
    Rule(r"^(?:conv1|bn1|layer[1-4]\.\d+\.(?:conv|bn|downsample)\w*|fc)\.", None,
         "ImageNet-style ResNet-10/18: torchvision's names in both", (IMAGENET_RESNET,)),
    # Inside a CKConv / FlexConv (names anchored at the end, under the layer's path).
    Rule(r"\.Kernel\.filters\.(\d+)\.linear\.(weight|bias)$", r".kernel_net.filters.\1.linear.\2",
         "MAGNet/Gabor/Fourier filter sines: 1x1 conv there, nn.Linear here; the input scale "
         "(kernel.input_scale / sqrt(L+1) times gamma) is in these weights in both, applied at init only",
         convert=_linear_from_1x1_conv),
    Rule(r"\.Kernel\.filters\.(\d+)\.(mu|gamma|theta)$", r".kernel_net.filters.\1.\2",
         "MAGNet/Gabor envelopes: mu [H, D], gamma [H, D] (MAGNet) or [H, 1] (Gabor), the same Gaussian "
         "exp(-1/2 sum_d (gamma (x_d - mu_d))^2) on the same [-1, 1] grid"),
    Rule(r"\.Kernel\.linear\.(\d+)\.(weight|bias)$", r".kernel_net.linears.\1.\2", "MFN hidden linears",
         convert=_linear_from_1x1_conv),
    Rule(r"\.Kernel\.output_linear\.(weight|bias)$", r".kernel_net.output_linear.\1",
         "MFN output linear; output o * C_in + i is kernel [o, i] in both", convert=_linear_from_1x1_conv),
    Rule(r"\.Kernel\.kernel_net\.(\d+)\.(weight|bias)$", _siren_linear,
         "SIREN: `kernel_net.<0, 2, ...>` are its linears (odd indices are the parameter-free sines), the last "
         "one the output linear; sin(omega_0 (W z + b)) in both", convert=_linear_from_1x1_conv),
    Rule(r"\.Kernel\.kernel_net\.(\d+)\.omega_0$", _siren_omega, "SIREN omega_0: [1] there, a 0-d tensor here; "
         "the file's value is used (a buffer or parameter in both)", convert=_scalar),
    Rule(r"\.mask_params$", None, "FlexConv mask: [D, 2], row d = axis d (row 0: the first spatial axis), "
         "columns (mean, sigma) on the [-1, 1] grid, in both. The 1D mean is the absolute centre, +1 = the current "
         "step (the last tap of the causal convolution) in both: the values carry over unchanged. sigma is used "
         "as |sigma| (the original squared it); values below 1e-3 are floored here, where the original divided "
         "by ~0"),
    Rule(r"\.train_length$", "", "the layer's kernel grid (taps per dimension): the original resets it after "
         "loading and samples on conv.horizon; here it fixes \"same\" grids and picks the cross-resolution "
         "phase, and a configured grid that differs is reported", role="grid"),
    Rule(r"\.mask_threshold$", "", "crop threshold: checked against mask.threshold", role="threshold"),
    Rule(r"\.temperature$", "", "sigmoid-mask temperature: never read by the Gaussian mask", role="unused"),
    Rule(r"\.alphas$", ".alpha", "N-Jet coefficients [F, C_in, C_out] in both (layout of the published N-JetNet "
         "layer; the original's private version is not public)"),
    Rule(r"\.scales$", ".scale", "N-Jet scale: sigma = 2^scale in both; [1] there, 0-d here; its cross-resolution "
         "factor kernel.srf.scale is not stored: it comes from the configuration", convert=_scalar),
    Rule(r"\.(running_mean|running_var|num_batches_tracked)$", None, "BatchNorm statistics: same names and meaning "
         "(eps 1e-5, momentum 0.1 in both)"),
)
# Not in the file, taken from the configuration: kernel.sampling_rate_norm (the kernel scale of a cross-resolution
# target phase, 0.25 for 16 -> 32), kernel.srf.scale, conv.use_fft, mask.type and the dynamic-cropping switch.


# --- applying it -----------------------------------------------------------------------------------------
class _Context:
    def __init__(self, model: nn.Module, original_keys):
        self.model = model
        self.keys = list(original_keys)
        self.key = ""  # the original name being translated
        self._last: dict[str, int] = {}

    @property
    def network(self) -> str:
        return type(self.model).__name__

    def last_siren_index(self) -> int:
        """The highest ``kernel_net`` index with a weight in the SIREN of the name being translated: its output
        linear."""
        prefix = self.key[: self.key.find(".Kernel.kernel_net.")]
        if prefix not in self._last:
            found = re.compile(re.escape(prefix) + r"\.Kernel\.kernel_net\.(\d+)\.weight$")
            indices = [int(m.group(1)) for m in map(found.match, self.keys) if m]
            self._last[prefix] = max(indices, default=-1)
        return self._last[prefix]


def translate(key: str, ctx: _Context) -> tuple[str, Callable[[torch.Tensor], torch.Tensor], str]:
    """(our name, value conversion, role) of the original's ``key``: every rule of :data:`RULES` that applies to
    the network and matches rewrites it in turn."""
    name, converts, role = key, [], "tensor"
    ctx.key = key
    for rule in RULES:
        if rule.networks and ctx.network not in rule.networks:
            continue
        match = re.search(rule.pattern, name)
        if match is None:
            continue
        if rule.ours is not None:
            replacement = rule.ours(match, ctx) if callable(rule.ours) else match.expand(rule.ours)
            name = name[:match.start()] + replacement + name[match.end():]
        if rule.convert is not None:
            converts.append(rule.convert)
        if rule.role != "tensor":
            role = rule.role

    def convert(value: torch.Tensor) -> torch.Tensor:
        for step in converts:
            value = step(value)
        return value

    return name, convert, role


def _shape(value) -> list[int]:
    return list(getattr(value, "shape", ()))


def _listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass
class MappedWeights:
    """What :func:`map_original` made of a file for one model.

    ``state``: our state-dict entries filled from the file, plus each CKConv/SRF layer's extra state (grid and
    kernel scale) from the configured model. What did not fit: ``unused`` entries of the file, ``unfilled``
    entries of the model, ``resized`` ones of another shape, ``differs``: buffers that contradict the
    configuration. ``notes``: conventions applied that change numbers (a kernel grid other than the file's).
    ``file_holds`` / ``model_has``: both networks in config keys, for the message."""

    state: dict = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    unfilled: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    file_holds: dict = field(default_factory=dict)
    model_has: dict = field(default_factory=dict)

    def problems(self, strict: bool, limit: int = 3) -> str:
        """Everything that did not fit, as one sentence ("" when it all fits). Without ``strict`` only what
        cannot load at all counts (other shapes, buffers that contradict the configuration)."""
        parts = []
        structure = [f"{key}={self.file_holds[key]} in the file, {self.model_has[key]} here"
                     for key in self.file_holds if key in self.model_has and key != "kernel grid"
                     and self.file_holds[key] != self.model_has[key]]
        if structure and (strict or self.resized or self.differs):
            parts.append("the file holds another network (" + "; ".join(structure) + ")")
        for items, what in ((self.resized, "of another shape"), (self.differs, "that contradict the config")):
            if items:
                parts.append(f"{len(items)} {what}: {_listed(items, limit)}")
        if strict:
            for items, what in ((self.unused, "in the file fit nowhere in the model"),
                                (self.unfilled, "of the model are not in the file")):
                if items:
                    parts.append(f"{len(items)} {what}: {_listed(items, limit)}")
        return "; ".join(parts)


def _kind(module) -> str:
    return type(module).__name__ if module is not None else "missing"


def map_original(original: Mapping[str, torch.Tensor], model: nn.Module) -> MappedWeights:
    """Map the original's state dict ``original`` onto ``model`` (built from the configuration) with
    :data:`RULES`. Nothing is loaded here: the result's ``state`` goes to ``model.load_state_dict``."""
    ctx = _Context(model, original.keys())
    ours = model.state_dict()
    modules = dict(model.named_modules())
    result = MappedWeights(file_holds=describe_original(original), model_has=describe_model(model))
    extra = {name[: -len("._extra_state")]: dict(value) for name, value in ours.items()
             if name.endswith("._extra_state")}
    reached = set()  # our entries the file speaks to (filled, or of another shape)
    regrid: dict[tuple, list[str]] = {}  # (file grid, configured grid, kernel scale) -> layers
    for key, value in original.items():
        name, convert, role = translate(key, ctx)
        if role == "tensor":
            if name not in ours:
                result.unused.append(f"{key} {_shape(value)}")
                continue
            reached.add(name)
            value = convert(value)
            if _shape(value) != _shape(ours[name]):
                result.resized.append(f"{key} {_shape(value)} in the file, {name} {_shape(ours[name])} here")
                continue
            result.state[name] = value
            continue
        layer = modules.get(name)
        number = value.reshape(-1)[0].item()
        if role == "grid":
            if not isinstance(layer, CKConv):
                result.unused.append(f"{key} (the kernel grid of a CKConv/FlexConv; {name} is {_kind(layer)} here)")
                continue
            grid, configured = int(number), extra[name]["grid_size"]
            if configured == 0:
                extra[name]["grid_size"] = grid  # a "same"/"full" horizon not resolved yet: the file's grid
            elif configured != grid:
                regrid.setdefault((grid, configured, extra[name]["sampling_rate_norm"]), []).append(name)
        elif not isinstance(layer, FlexConv):  # threshold / unused: buffers of a FlexConv
            result.unused.append(f"{key} (a FlexConv buffer; {name} is {_kind(layer)} here)")
        elif role == "threshold" and not math.isclose(number, layer.mask_threshold, rel_tol=1e-6):
            result.differs.append(f"{key} = {number:g} in the file, mask.threshold={layer.mask_threshold:g} here")
    for (grid, configured, scale), names in regrid.items():
        result.notes.append(f"kernels trained on a {grid}-tap grid are sampled on {configured} taps (conv.horizon) "
                            f"over the same [-1, 1] extent, as the original does after loading, times "
                            f"kernel.sampling_rate_norm={scale:g}, in {len(names)} layer(s): {_listed(names, 3)}")
    result.unfilled = [f"{name} {_shape(value)}" for name, value in ours.items()
                       if name not in reached and not name.endswith("._extra_state")]
    for name, state in extra.items():
        result.state[f"{name}._extra_state"] = state
    return result


# --- what a file holds, in config keys -------------------------------------------------------------------
def describe_original(original: Mapping[str, torch.Tensor]) -> dict:
    """The original network's structure in config keys, read from its names and shapes (for messages)."""
    keys = list(original)
    found: dict[str, Any] = {}
    blocks = {m.group(2) for m in (re.match(r"^(blocks|backbone)\.(\d+)\.", k) for k in keys) if m}
    if any(k.startswith("backbone.") for k in keys):
        found["net.type"] = "TCN"
    elif any(k.startswith("cconv1.") for k in keys):
        found["net.type"] = "ResNet"
    elif "fc.weight" in original:
        found["net.type"] = "OriginalResnet"
    elif "linear.weight" in original and any(k.startswith("layer1.") for k in keys):
        per_stage = len({k.split(".")[1] for k in keys if k.startswith("layer1.")})
        found["net.type"] = f"CIFARResNet{6 * per_stage + 2}"
    if blocks:
        found["net.no_blocks"] = len(blocks)
    for key in ("cconv1.bias", "norm1.weight", "cconv1.weight"):
        if found.get("net.type") == "ResNet" and key in original:
            found["net.no_hidden"] = original[key].shape[0]
            break
    if any(k.endswith(".mask_params") for k in keys):
        found["conv.type"] = "FlexConv"
    elif any(".Kernel." in k for k in keys):
        found["conv.type"] = "CKConv"
    elif any(k.endswith(".alphas") for k in keys):
        found["conv.type"] = "SRF"
    elif found.get("net.type") in ("ResNet", "TCN"):
        found["conv.type"] = "Conv"
    kernel = _first_kernel_prefix(keys)
    if kernel is not None:
        found.update(_describe_kernel_net(original, kernel))
    for key in ("out_layer.weight", "finallyr.weight", "linear.weight", "fc.weight"):
        if key in original:
            found["classes"] = original[key].shape[0]
            break
    grids = original_grids(original)
    if grids:
        found["kernel grid"] = sorted(grids)[0] if len(grids) == 1 else sorted(grids)
    return found


def _describe_kernel_net(original: Mapping[str, torch.Tensor], net: str) -> dict:
    """Type, width and depth of the kernel net whose names start with ``net`` (``<layer>.Kernel.``)."""
    siren = original.get(f"{net}kernel_net.0.weight")
    if siren is not None:
        layers = [k for k in original if re.fullmatch(re.escape(net) + r"kernel_net\.\d+\.weight", k)]
        return {"kernel.type": "SIREN", "kernel.no_hidden": siren.shape[0], "kernel.no_layers": len(layers)}
    first, gamma = original.get(f"{net}filters.0.linear.weight"), original.get(f"{net}filters.0.gamma")
    if gamma is None:
        kind = "Fourier"
    elif first is not None and first.shape[1] > 1:
        kind = "MAGNet" if gamma.shape[1] == first.shape[1] else "Gabor"
    else:
        kind = "MAGNet or Gabor"  # in 1D both have gamma [H, 1]
    hidden = [k for k in original if re.fullmatch(re.escape(net) + r"linear\.\d+\.weight", k)]
    found = {"kernel.type": kind, "kernel.no_layers": len(hidden)}
    if first is not None:
        found["kernel.no_hidden"] = first.shape[0]
    return found


def _first_kernel_prefix(keys) -> Optional[str]:
    for key in keys:
        index = key.find(".Kernel.")
        if index >= 0:
            return key[: index + len(".Kernel.")]
    return None


def describe_model(model: nn.Module) -> dict:
    """The same description as :func:`describe_original`, of one of our models."""
    from models.cifar_resnet import CIFARResNet
    from models.flexnet import FlexNet
    from models.resnet import ImageNetResNet
    from models.tcn import TCN as TCNModel

    found: dict[str, Any] = {}
    if isinstance(model, FlexNet):
        found["net.type"] = "ResNet"
    elif isinstance(model, TCNModel):
        found["net.type"] = "TCN"
    elif isinstance(model, CIFARResNet):
        found["net.type"] = f"CIFARResNet{2 * len(model.layers) + 2}"
    elif isinstance(model, ImageNetResNet):
        found["net.type"] = "OriginalResnet"
    if hasattr(model, "blocks"):
        found["net.no_blocks"] = len(model.blocks)
    if isinstance(model, FlexNet):
        stem = model.stem[0]
        found["net.no_hidden"] = getattr(stem, "out_channels", None)
    convs = [m for m in model.modules() if isinstance(m, (CKConv, SRFConv, nn.Conv1d, nn.Conv2d))]
    if found.get("net.type") in ("ResNet", "TCN") and convs:
        first = convs[0]
        found["conv.type"] = ("FlexConv" if isinstance(first, FlexConv) and first.mask_params is not None
                              else "CKConv" if isinstance(first, CKConv)
                              else "SRF" if isinstance(first, SRFConv) else "Conv")
        if isinstance(first, CKConv):
            net = first.kernel_net
            if isinstance(net, SIREN):
                found["kernel.type"] = "SIREN"
                found["kernel.no_hidden"] = net.output_linear.in_features
                found["kernel.no_layers"] = len(net.layers) + 1
            else:
                kind = {MAGNet: "MAGNet", GaborNet: "Gabor", FourierNet: "Fourier"}.get(type(net), type(net).__name__)
                one_d_mfn = first.data_dim == 1 and kind in ("MAGNet", "Gabor")  # as describe_original says
                found["kernel.type"] = "MAGNet or Gabor" if one_d_mfn else kind
                found["kernel.no_hidden"] = net.output_linear.in_features
                found["kernel.no_layers"] = len(getattr(net, "linears", ()))
            grids = {m.grid_size for m in model.modules() if isinstance(m, CKConv) and m.grid_size}
            if grids:
                found["kernel grid"] = sorted(grids)[0] if len(grids) == 1 else sorted(grids)
    readout = getattr(model, "out_layer", None) or getattr(model, "linear", None) or getattr(model, "fc", None)
    if readout is not None:
        found["classes"] = readout.weight.shape[0]
    return found


def original_grids(original: Mapping[str, torch.Tensor]) -> set[int]:
    """The kernel grids (``train_length``) of the file's CKConv/FlexConv layers (empty for other networks)."""
    return {int(v.reshape(-1)[0]) for k, v in original.items() if k.endswith(".train_length")}


def original_data_state(permuted: bool, seed: int) -> dict:
    """The data state the original's run had where it can be recreated: its pMNIST permutation was
    ``np.random.permutation(784)`` right after ``np.random.seed(seed)``. (Its noise-padded CIFAR-10 noise was
    drawn from torch's RNG after the model's initialisation and is lost.)"""
    if permuted and seed >= 0:
        return {"permutation": torch.from_numpy(np.random.RandomState(seed).permutation(784)).long()}
    return {}
