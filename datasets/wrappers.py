"""Small torch Datasets: in-memory raw data and a subset view that applies a transform.

A raw dataset is read from disk once; the train split (with augmentations) and the validation split
(with eval transforms) are two ``Transformed`` views of it over disjoint index sets.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageArray(Dataset):
    """uint8 images in memory -> (PIL image, label), like torchvision's MNIST / CIFAR10 items.

    images: [N, H, W] (grey) or [N, H, W, C] (RGB); targets: [N] ints.
    """

    def __init__(self, images: np.ndarray, targets: Sequence[int]):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return Image.fromarray(self.images[index]), int(self.targets[index])


class TensorItems(Dataset):
    """Ready tensors in memory -> (inputs[i], label). inputs: [N, *shape]; targets: [N]."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} labels")
        self.inputs = inputs
        self.targets = torch.as_tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return self.inputs[index], int(self.targets[index])


def as_target(label):
    """A class label as an int (torchvision gives ints, some datasets 0-d integer tensors); the targets of regression
    and per-step tasks (float or non-scalar tensors) as they are."""
    if torch.is_tensor(label) and (label.dim() > 0 or label.is_floating_point()):
        return label
    return int(label)


class Transformed(Dataset):
    """View of ``base`` restricted to ``indices`` (all samples if None), items passed through ``transform``."""

    def __init__(self, base: Dataset, indices: Optional[Sequence[int]] = None, transform: Optional[Callable] = None):
        self.base = base
        self.indices = torch.arange(len(base)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        item, label = self.base[int(self.indices[index])]
        if self.transform is not None:
            item = self.transform(item)
        return item, as_target(label)

    @property
    def targets(self) -> torch.Tensor:
        """Labels of the samples in this view, [len(self)]."""
        return torch.as_tensor(self.base.targets)[self.indices]
