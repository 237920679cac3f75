"""STL-10: [3, 96, 96] images of 10 classes (5,000 labelled training and 8,000 test images).

Key: ``STL10``. Normalised with the STL-10 statistics the original uses (mean 0.4467, 0.4398, 0.4066;
std 0.2603, 0.2566, 0.2713). Augmentations (``train.augment``):

* ``None``: none (only ToTensor and Normalize);
* ``resnet``: zero-padding 12 + random crop back to 96, random horizontal flip, then (after
  normalisation) Cutout of one 32 x 32 hole clipped at the borders (:class:`~datasets.transforms.Cutout`).

``resolution=r`` resizes to [3, r, r] after the crop and flip, as for CIFAR-10; the cutout hole then
scales with the image (``2 * round(16 * r / 96)`` pixels), so it covers the same part of the picture.

Files: the binary files of the official ``stl10_binary.tar.gz`` under ``<root>/stl10_binary/``:
``train_X.bin``, ``train_y.bin``, ``test_X.bin`` and ``test_y.bin``. Each ``*_X.bin`` holds uint8 images
of 3 x 96 x 96 bytes, channel after channel, each channel column-major; each ``*_y.bin`` one byte per
image with the label 1..10 (read as 0..9, as torchvision's STL10 does). The unlabelled split
(``unlabeled_X.bin``, 2.8 GB) is not needed. When one of the four files is missing, torchvision's
downloader fetches and extracts the archive (about 2.6 GB) into ``<root>`` (or extracts a copy already there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import download_and_extract_archive

from .images import ImageDatasetSpec
from .paths import DatasetNotAvailableError, unavailable_as_error
from .registry import DataOptions, register_dataset
from .transforms import Cutout, cifar_resnet_augment, image_pipeline
from .wrappers import ImageArray

STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
STL10_SIDE = 96
CUTOUT_LENGTH = 32  # side of the cutout hole at 96 x 96
_IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE


def read_stl10_split(folder: Path, split: str) -> ImageArray:
    """Images and 0-based labels of ``split`` ("train" or "test") from ``<folder>/<split>_{X,y}.bin``.

    Returns an :class:`ImageArray` of HWC uint8 images [N, 96, 96, 3] (one copy in memory) and labels 0..9.
    Files of the wrong size or with labels outside 1..10 raise DatasetNotAvailableError naming the file.
    """
    images_file, labels_file = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    labels = np.fromfile(labels_file, dtype=np.uint8)
    n_bytes = images_file.stat().st_size
    if n_bytes % _IMAGE_BYTES or n_bytes // _IMAGE_BYTES != len(labels):
        raise DatasetNotAvailableError(
            f"Dataset 'STL10': '{images_file}' has {n_bytes} bytes, but '{labels_file}' has {len(labels)} "
            f"labels (each image is {_IMAGE_BYTES} bytes): the files are truncated or from different "
            "splits; extract them again from the official stl10_binary.tar.gz."
        )
    if len(labels) == 0 or labels.min() < 1 or labels.max() > 10:
        raise DatasetNotAvailableError(
            f"Dataset 'STL10': '{labels_file}' must hold labels 1..10 (one byte each), found "
            f"{'no labels' if len(labels) == 0 else f'values {labels.min()}..{labels.max()}'}."
        )
    # File layout [N, C, W, H] (each channel column-major) -> HWC, as PIL and torchvision's items want it.
    raw = np.fromfile(images_file, dtype=np.uint8).reshape(-1, 3, STL10_SIDE, STL10_SIDE)
    images = np.ascontiguousarray(raw.transpose(0, 3, 2, 1))
    del raw
    return ImageArray(images, labels.astype(np.int64) - 1)


@register_dataset("STL10")
class STL10(ImageDatasetSpec):
    """STL-10 images [3, 96, 96] (or [3, r, r] with ``resolution=r``)."""

    image_size = STL10_SIDE
    in_channels = 3
    mean = (0.4467, 0.4398, 0.4066)
    std = (0.2603, 0.2566, 0.2713)
    augment_choices = ("None", "resnet")

    def augment_ops(self, augment: str, resolution: int | None = None) -> tuple[list, list]:
        side = resolution or self.image_size
        hole = 2 * max(1, round(CUTOUT_LENGTH / 2 * side / self.image_size))  # even, as 32 at 96 x 96
        return cifar_resnet_augment(self.image_size), [Cutout(hole, holes=1)]

    def transforms(self, options: DataOptions, state: Mapping[str, torch.Tensor]):
        common = dict(mean=self.mean, std=self.std, resolution=options.resolution,
                      interpolation=options.interpolation)
        pil_ops, tensor_ops = (([], []) if options.augment == "None"
                               else self.augment_ops(options.augment, options.resolution))
        return (image_pipeline(pil_augment=pil_ops, tensor_augment=tensor_ops, **common),
                image_pipeline(**common))

    def load_raw(self, root: Path):
        folder = root / torchvision.datasets.STL10.base_folder
        archive = torchvision.datasets.STL10.filename
        missing = [name for name in STL10_FILES if not (folder / name).is_file()]
        if missing:
            how = (
                f"Missing: {', '.join(missing)}. To provide it: run once with internet access (torchvision "
                f"downloads {archive}, about 2.6 GB, and extracts it), or put the official {archive} into "
                f"'{root}', or the files {', '.join(STL10_FILES)} (from that archive) into '{folder}', or "
                "set dataset_params.root to a data root that has them under stl10_binary/."
            )
            with unavailable_as_error(self.name, [folder], how):
                # torchvision's own download path (skips the download when a verified archive is there).
                download_and_extract_archive(torchvision.datasets.STL10.url, str(root), filename=archive,
                                             md5=torchvision.datasets.STL10.tgz_md5)
                still = [name for name in STL10_FILES if not (folder / name).is_file()]
                if still:
                    raise RuntimeError(f"{archive} did not contain {', '.join(still)}")
        return read_stl10_split(folder, "train"), read_stl10_split(folder, "test")
