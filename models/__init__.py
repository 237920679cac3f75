"""Networks built from ``ckconv`` layers, selected by ``net.type`` through one registry.

    >>> from models import build_model, list_models
    >>> model = build_model(cfg, data_dim=2, in_channels=3, num_classes=10)

Registered names (``list_models()``): ``ResNet`` (FlexNet 2D / sequence ResNet 1D), ``TCN``
(FlexTCN / CKTCN, 1D), ``CIFARResNet20/32/44/56/110``.
"""
from .registry import build_model, list_models, register_model
from .utils import count_parameters, kernel_sizes

# Importing the model modules registers them.
from . import cifar_resnet, flexnet, tcn  # noqa: F401,E402

__all__ = ["build_model", "list_models", "register_model", "kernel_sizes", "count_parameters"]
