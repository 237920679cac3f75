"""MNIST and Fashion-MNIST: 2D ([1, 28, 28]), sequential ([1, 784]) and permuted (pMNIST) forms.

Keys: ``MNIST``, ``sMNIST`` (``permuted=True`` -> pMNIST), ``FashionMNIST``, ``sFashionMNIST``.
Files are read by torchvision (``download=True``) from ``<root>/<MNIST|FashionMNIST>/raw/``. Before
that, raw IDX files found as .gz (in that folder or in ``RAW_FILE_SEARCH_PATHS``, e.g. the Debian
``dataset-fashion-mnist`` package) are decompressed into it, so torchvision finds them and never
touches the network. (torchvision itself only accepts .gz files whose md5 matches the official
archives; the Debian files are recompressed and do not.)
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torchvision

from .images import ImageDatasetSpec
from .paths import RAW_FILE_SEARCH_PATHS, atomic_copy, unavailable_as_error
from .registry import register_dataset
from .transforms import mnist_standard_augment

# The four files torchvision's MNIST-style classes read (uncompressed names).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def stage_idx_files(raw_dir: Path, search_dirs: tuple[Path, ...]) -> None:
    """Put each IDX file, uncompressed, into ``raw_dir`` if a copy exists somewhere we look.

    Looks in ``raw_dir`` itself (e.g. the user copied the .gz files there) and then ``search_dirs``;
    a file found nowhere is left for torchvision to download.
    """
    for name in IDX_FILES:
        target = raw_dir / name
        if target.is_file():
            continue
        for folder in (raw_dir, *search_dirs):
            candidates = [folder / f"{name}.gz", folder / name]
            found = next((c for c in candidates if c.is_file() and c != target), None)
            if found is not None:
                atomic_copy(found, target)
                break


class _MNISTLike(ImageDatasetSpec):
    """Grey 28x28 digits-like images with 10 classes, read with a torchvision MNIST-style class."""

    torchvision_class: ClassVar[type] = torchvision.datasets.MNIST
    image_size = 28
    in_channels = 1
    mean = (0.1307,)
    std = (0.3081,)
    augment_choices = ("None", "standard")

    def augment_ops(self, augment: str) -> tuple[list, list]:
        return mnist_standard_augment()

    def load_raw(self, root: Path):
        folder_name = self.torchvision_class.__name__  # torchvision's folder: <root>/<class name>/raw
        raw_dir = root / folder_name / "raw"
        search_dirs = RAW_FILE_SEARCH_PATHS.get(folder_name, ())
        stage_idx_files(raw_dir, search_dirs)
        how = (
            "To provide it: run once with internet access (torchvision downloads it), or copy the files "
            f"{', '.join(f + '.gz' for f in IDX_FILES)} (gzipped or not) into '{raw_dir}', "
            "or set dataset_params.root to a data root that has them under "
            f"{folder_name}/raw/."
        )
        with unavailable_as_error(self.name, [raw_dir, *search_dirs], how):
            train = self.torchvision_class(str(root), train=True, download=True)
            test = self.torchvision_class(str(root), train=False, download=True)
        return train, test


@register_dataset("MNIST")
class MNIST(_MNISTLike):
    """MNIST images [1, 28, 28] (or [1, r, r] with ``resolution=r``)."""


@register_dataset("sMNIST")
class SequentialMNIST(_MNISTLike):
    """Sequential MNIST [1, 784] (row-major raster scan); ``permuted=True``: pMNIST."""

    sequential = True
    supports_permuted = True


class _FashionMNISTLike(_MNISTLike):
    torchvision_class = torchvision.datasets.FashionMNIST
    # Fashion-MNIST's own statistics (training set pixel mean / std in [0, 1]).
    mean = (0.2860,)
    std = (0.3530,)


@register_dataset("FashionMNIST")
class FashionMNIST(_FashionMNISTLike):
    """Fashion-MNIST images [1, 28, 28] (or [1, r, r] with ``resolution=r``)."""


@register_dataset("sFashionMNIST")
class SequentialFashionMNIST(_FashionMNISTLike):
    """Sequential Fashion-MNIST [1, 784]; ``permuted=True``: permuted form."""

    sequential = True
    supports_permuted = True
