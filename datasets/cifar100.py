"""CIFAR-100: [3, 32, 32] images of 100 classes (the fine labels).

Key: ``CIFAR100``. Treated exactly like ``CIFAR10``: the same ImageNet normalisation statistics (as the
original), the same ``resnet`` augmentation (zero-padding 4 + random crop to 32, random horizontal flip)
and the same resizing (``resolution=r`` -> [3, r, r], for cross-resolution runs).

Files are read by torchvision's CIFAR100 with ``download=True`` from ``<root>/cifar-100-python/``
(the pickles ``train``, ``test`` and ``meta``, as the official ``cifar-100-python.tar.gz`` extracts);
torchvision checks each file's md5 and downloads (and extracts) the archive into ``<root>`` when a file
is missing or corrupted.
"""

from __future__ import annotations

import torchvision

from .cifar10 import _CIFAR10Like
from .registry import register_dataset

CIFAR100_FILES = ("train", "test", "meta")


@register_dataset("CIFAR100")
class CIFAR100(_CIFAR10Like):
    """CIFAR-100 images [3, 32, 32] (or [3, r, r] with ``resolution=r``), 100 classes."""

    num_classes = 100
    torchvision_dataset = torchvision.datasets.CIFAR100
    files = CIFAR100_FILES
