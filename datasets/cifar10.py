"""CIFAR-10: 2D ([3, 32, 32]), sequential ([3, 1024]) and noise-padded ([96, 1000]) forms.

Keys: ``CIFAR10`` and ``sCIFAR10`` (``noise_padded=True`` -> noise-padded CIFAR-10). Files are read
by torchvision's CIFAR10 with ``download=True`` from ``<root>/cifar-10-batches-py/``; torchvision
checks each batch file's md5 and downloads (and extracts) ``cifar-10-python.tar.gz`` into ``<root>``
when a file is missing or corrupted.
"""

from __future__ import annotations

from pathlib import Path

import torchvision

from .images import ImageDatasetSpec
from .paths import unavailable_as_error
from .registry import register_dataset
from .transforms import cifar_resnet_augment

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta")


class _CIFAR10Like(ImageDatasetSpec):
    image_size = 32
    in_channels = 3
    # The original normalises CIFAR-10 with ImageNet statistics; kept for parity.
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    augment_choices = ("None", "resnet")

    def augment_ops(self, augment: str) -> tuple[list, list]:
        return cifar_resnet_augment(self.image_size), []

    # The torchvision reader of the files and the files it reads (CIFAR-100 sets its own).
    torchvision_dataset = torchvision.datasets.CIFAR10
    files = CIFAR10_FILES

    def load_raw(self, root: Path):
        reader = self.torchvision_dataset
        folder = root / reader.base_folder
        how = (
            "To provide it: run once with internet access (torchvision downloads it), or put the "
            f"official {reader.filename} into '{root}', or its extracted files "
            f"({', '.join(self.files)}) into '{folder}', or set dataset_params.root to a data root "
            "that has them."
        )
        with unavailable_as_error(self.name, [folder], how):
            train = reader(str(root), train=True, download=True)
            test = reader(str(root), train=False, download=True)
        return train, test


@register_dataset("CIFAR10")
class CIFAR10(_CIFAR10Like):
    """CIFAR-10 images [3, 32, 32] (or [3, r, r] with ``resolution=r``)."""


@register_dataset("sCIFAR10")
class SequentialCIFAR10(_CIFAR10Like):
    """Sequential CIFAR-10 [3, 1024] (each channel raster-scanned);
    ``noise_padded=True``: [96, 1000] (32 row steps + 968 fixed-noise steps)."""

    sequential = True
    supports_noise_padded = True
