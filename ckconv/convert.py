"""Turn an existing network's convolutions into FlexConv layers.

:func:`flexify` replaces, in place, every ``nn.Conv2d`` (and with ``causal_1d=True`` every ``nn.Conv1d``) that
a FlexConv can stand for: a "same"-padded convolution with an odd kernel > 1, ``groups=1``, ``dilation=1``
and zero padding. Strided ones become ``Sequential(FlexConv, Subsample(stride))``: a strided "same"
convolution's outputs are the stride-1 outputs at positions ``0, s, 2s, ...``. Everything else (1x1
convolutions, grouped/depthwise, dilated, "valid"-padded, reflect/circular padding, transposed convolutions,
subclasses of the conv classes) is left alone. :func:`flexify_plan` says, without changing anything, what
:func:`flexify` would do with each convolution.
"""
from __future__ import annotations

from torch import nn

from .nn.ckconv import FlexConv

_CONV_TYPES = {nn.Conv1d: 1, nn.Conv2d: 2}
_FROM_CONV = ("in_channels", "out_channels", "data_dim", "horizon", "bias")


class Subsample(nn.Module):
    """Keep every ``stride``-th position of each spatial dimension: ``x[..., ::s_1, ::s_2]``.

    Args:
        stride: a tuple with one int per spatial dimension (``(s,)`` in 1D, ``(s_h, s_w)`` in 2D).

    Input ``[B, C, *spatial]`` -> ``[B, C, *ceil(spatial / stride)]``. After a stride-1 "same"
    convolution this gives exactly the output of the same convolution with that stride.

    Example::

        Subsample((2, 2))(torch.randn(1, 3, 33, 32)).shape   # [1, 3, 17, 16]
    """

    def __init__(self, stride: tuple[int, ...]):
        super().__init__()
        self.stride = tuple(int(s) for s in stride)

    def forward(self, x):
        return x[(Ellipsis,) + tuple(slice(None, None, s) for s in self.stride)]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def _decision(conv: nn.Module, causal_1d: bool) -> str:
    """``"replace"`` or ``"keep: <reason>"`` for one convolution module."""
    data_dim = _CONV_TYPES.get(type(conv))
    if data_dim is None:
        return f"keep: {type(conv).__name__} is not nn.Conv1d / nn.Conv2d"
    kernel = tuple(conv.kernel_size)
    if all(k == 1 for k in kernel):
        return "keep: 1x1 convolution"
    if any(k == 1 for k in kernel) or any(k % 2 == 0 for k in kernel):
        return f"keep: kernel {kernel} (needs odd sizes > 1)"
    if conv.groups != 1:
        return f"keep: groups={conv.groups}"
    if any(d != 1 for d in conv.dilation):
        return f"keep: dilation {tuple(conv.dilation)}"
    if conv.padding_mode != "zeros":
        return f"keep: padding_mode={conv.padding_mode!r}"
    padding = conv.padding
    if padding != "same" and tuple(padding) != tuple(k // 2 for k in kernel):
        return f"keep: padding {padding!r} is not 'same' (kernel_size // 2)"
    if data_dim == 1 and not causal_1d:
        return "keep: 1D convolution (FlexConv is causal in 1D; flexify(..., causal_1d=True) converts it)"
    stride = tuple(conv.stride)
    return "replace" if all(s == 1 for s in stride) else f"replace (stride {stride}: FlexConv, then Subsample)"


def flexify_plan(model: nn.Module, *, causal_1d: bool = False) -> dict[str, str]:
    """What :func:`flexify` would do with each ``nn.Conv1d`` / ``nn.Conv2d`` of ``model``; changes nothing.

    Args:
        model: any module.
        causal_1d: as in :func:`flexify`.

    Returns ``{qualified module name: decision}`` for every ``nn.Conv1d`` / ``nn.Conv2d`` (``""`` for the model
    itself), where a decision is ``"replace"``, ``"replace (stride (2, 2): FlexConv, then Subsample)"`` or
    ``"keep: <reason>"`` (e.g. ``"keep: 1x1 convolution"``, ``"keep: groups=32"``).

    Example::

        plan = flexify_plan(torchvision.models.resnet18(num_classes=10))
        sum(d.startswith("replace") for d in plan.values())   # 17: conv1 (7x7) and the 16 3x3 convs
        plan["layer2.0.downsample.0"]                         # 'keep: 1x1 convolution'
    """
    return {name: _decision(module, causal_1d) for name, module in model.named_modules()
            if isinstance(module, (nn.Conv1d, nn.Conv2d))}


def _flexconv_for(conv: nn.Conv1d | nn.Conv2d, horizon, flexconv_kwargs: dict) -> nn.Module:
    data_dim = _CONV_TYPES[type(conv)]
    kwargs = dict(flexconv_kwargs)
    if kwargs.get("mask_use", True):
        kwargs.setdefault("mask_init_taps", max(conv.kernel_size))
    # bias=True keeps the kernel-net biases: without them a MAGNet kernel is 0 at the centre tap and tiny
    # elsewhere (every filter is sin(W x) with sin(0) = 0). The conv bias itself follows the converted conv.
    layer = FlexConv(conv.in_channels, conv.out_channels, data_dim, horizon, bias=True, **kwargs)
    if conv.bias is None:
        layer.bias = None
    layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
    stride = tuple(conv.stride)
    replacement = layer if all(s == 1 for s in stride) else nn.Sequential(layer, Subsample(stride))
    return replacement.train(conv.training)


def flexify(model: nn.Module, *, horizon="same", causal_1d: bool = False, **flexconv_kwargs) -> nn.Module:
    """Replace, in place, the convolutions of ``model`` that a FlexConv can stand for, and return ``model``.

    Replaced: every ``nn.Conv2d`` (exactly that class) with an odd kernel > 1 in each dimension, ``groups=1``,
    ``dilation=1``, zero padding of ``kernel_size // 2`` (or ``"same"``); with ``causal_1d=True`` also such
    ``nn.Conv1d``. It becomes ``FlexConv(in, out, data_dim, horizon, **flexconv_kwargs)`` with the conv's
    bias (or none) and the conv's device, dtype and train/eval mode; a strided conv (stride ``s``) becomes
    ``nn.Sequential(FlexConv, Subsample(s))``, which has the strided conv's output size. Kept: everything else
    (1x1 and grouped/depthwise convolutions, dilated, unpadded or non-zero-padded ones, subclasses). The new
    layers are freshly initialised (the conv weights are not transferred): train the model afterwards. A conv
    module shared by several parents becomes one shared FlexConv. :func:`flexify_plan` lists the decisions.

    Args:
        model: the network (modified in place; a conv passed as ``model`` itself is returned replaced).
        horizon: the FlexConv grid / maximum kernel size. Default ``"same"``: resolved at each layer's first
            forward from the width of ITS input (rounded up to odd in 2D), so the kernel can grow to cover the
            whole feature map at every stage of the network; the resolved size is stored in the state dict.
            An int (odd in 2D) fixes it for all layers.
        causal_1d: convert ``nn.Conv1d`` too. In this library a 1D FlexConv is CAUSAL (output ``t`` sees inputs
            ``<= t``), while a "same"-padded ``nn.Conv1d`` is centred: converting changes what each output sees.
            Default False: 1D convolutions are kept.
        **flexconv_kwargs: passed to every :class:`FlexConv` (``kernel_type``, ``mask_init_value``, ``use_fft``,
            ...). Unless given, ``mask_init_taps`` is the replaced conv's kernel size, so every layer starts at
            the kernel size it replaces (a 3x3 conv starts as a 3x3 FlexConv at any resolution); pass
            ``mask_init_taps=None`` for the paper's initial mask (``mask_init_value``; its crop shrinks with the
            grid and is 1 tap on grids of <= 13 taps, where the mask cannot grow).

    Returns ``model`` (the same object unless ``model`` is itself a converted conv). Shapes are unchanged:
    ``[B, C_in, H, W] -> [B, C_out, H_out, W_out]`` as with the replaced convolutions.

    Example::

        model = flexify(torchvision.models.resnet18(num_classes=10))   # conv1 and the 16 3x3 convs
        model(torch.randn(2, 3, 32, 32)).shape                          # [2, 10]
        optimizer = torch.optim.Adam(param_groups(model, lr=1e-3))      # masks at lr 1e-4
    """
    clash = sorted(set(flexconv_kwargs) & set(_FROM_CONV))
    if clash:
        raise TypeError(f"flexify() takes {', '.join(clash)} from each convolution; remove "
                        f"{', '.join(repr(c) for c in clash)} from the keyword arguments")
    replacements: dict[int, nn.Module] = {}
    for module in model.modules():
        if id(module) not in replacements and _decision(module, causal_1d).startswith("replace"):
            replacements[id(module)] = _flexconv_for(module, horizon, flexconv_kwargs)
    if id(model) in replacements:
        return replacements[id(model)]
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and id(child) in replacements:
                parent._modules[name] = replacements[id(child)]
    return model
