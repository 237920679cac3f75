"""Networks built from ``ckconv`` layers, selected by ``net.type`` through one registry.

    >>> from models import ModelSpec, NetSpec, build_model
    >>> model = build_model(ModelSpec(net=NetSpec(type="ResNet", no_hidden=22, no_blocks=7)), data_dim=2,
    ...                     in_channels=3, num_classes=10)

Models take a :class:`ModelSpec` (or plain nested mappings of its fields), never the run's Hydra config.

Registered names (``list_models()``): ``ResNet`` (FlexNet 2D / sequence ResNet 1D), ``TCN``
(FlexTCN / CKTCN, 1D), ``CIFARResNet20/32/44/56/110``, ``OriginalResnet10/18`` (ImageNet-style
ResNets, the STL-10 baselines).
"""
from .registry import build_model, list_models, register_model
from .spec import ConvSpec, KernelSpec, MaskSpec, ModelSpec, NetSpec
from .utils import count_parameters, kernel_sizes

# Importing the model modules registers them.
from . import cifar_resnet, flexnet, resnet, tcn  # noqa: F401,E402

__all__ = ["ConvSpec", "KernelSpec", "MaskSpec", "ModelSpec", "NetSpec", "build_model", "count_parameters",
           "kernel_sizes", "list_models", "register_model"]
