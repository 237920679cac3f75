"""What a network is built from: the ``net``, ``conv``, ``kernel`` and ``mask`` settings as frozen dataclasses.

A :class:`ModelSpec` is all a model needs (with the data's shape and class count), so a model can be built
without the Hydra config::

    spec = ModelSpec(net=NetSpec(type="ResNet", no_hidden=22, no_blocks=7), conv=ConvSpec(horizon=33))
    model = build_model(spec, data_dim=2, in_channels=3, num_classes=10)

Field names are those of the config keys (``net.no_hidden`` is ``spec.net.no_hidden``), except
``kernel.srf.scale``, which is ``spec.kernel.srf_scale``. The defaults are those of the default experiment
(FlexTCN on MNIST-1D). Checkpoints store ``spec.to_dict()`` and rebuild the model from it
(:meth:`ModelSpec.from_dict`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Mapping, Optional, Union


@dataclass(frozen=True)
class NetSpec:
    """The network around the conv layers (``net.*``)."""

    type: str = "TCN"
    no_hidden: int = 32
    no_blocks: int = 4
    dropout: float = 0.1
    norm: str = "BatchNorm"
    nonlinearity: str = "ReLU"
    block_width_factors: tuple[float, ...] = (0.0,)


@dataclass(frozen=True)
class ConvSpec:
    """The conv layers (``conv.*``)."""

    type: str = "FlexConv"
    horizon: Union[int, str] = "same"   # an int, "same" or "full" (the layers parse it)
    use_fft: Union[bool, str] = "auto"   # True, False or "auto"
    bias: bool = True
    padding: str = "same"
    stride: int = 1


@dataclass(frozen=True)
class KernelSpec:
    """The kernel network of CKConv / FlexConv (``kernel.*``) and the N-Jet scale (``kernel.srf.scale``)."""

    type: str = "MAGNet"
    no_hidden: int = 32
    no_layers: int = 3
    activ_function: str = "ReLU"
    norm: str = ""
    omega_0: float = 30.0
    learn_omega_0: bool = False
    weight_norm: bool = False
    steerable: bool = False
    init_spatial_value: float = 1.0
    bias_init: Optional[str] = None     # None = PyTorch's default init
    input_scale: float = 25.6
    sampling_rate_norm: float = 1.0
    srf_scale: float = 0.0


@dataclass(frozen=True)
class MaskSpec:
    """FlexConv's Gaussian mask (``mask.*``)."""

    use: bool = True
    type: str = "gaussian"
    init_value: float = 0.075
    dynamic_cropping: bool = True
    threshold: float = 0.1


@dataclass(frozen=True)
class ModelSpec:
    """Everything a model is built from, besides the data's shape."""

    net: NetSpec = field(default_factory=NetSpec)
    conv: ConvSpec = field(default_factory=ConvSpec)
    kernel: KernelSpec = field(default_factory=KernelSpec)
    mask: MaskSpec = field(default_factory=MaskSpec)

    def to_dict(self) -> dict:
        """Plain values only (lists for tuples): what a checkpoint stores."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelSpec":
        """A spec from nested mappings such as ``{"net": {"type": "TCN"}, "conv": {"horizon": 33}}``; sections
        and fields left out keep their defaults. An unknown section or field is a ``ValueError`` naming it."""
        return _build(cls, values, "")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _build(cls: type, values: Mapping[str, Any], prefix: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown model setting(s) {', '.join(prefix + name for name in unknown)}; "
                         f"{prefix.rstrip('.') or 'a model spec'} has {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else known[name].default
        if is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{prefix}{name}.")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
