"""Shared spec for image datasets and their sequential forms (MNIST, CIFAR-10, Fashion-MNIST).

One class covers the 2D form ([C, H, W], optionally resized), the raster-scanned sequence
([C, H*W], optionally permuted: pMNIST) and the noise-padded sequence ([C*W, total steps]).
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np
import torch
from torchvision.transforms import Compose

from .registry import DataOptions, DatasetMeta, DatasetSpec, seeded_generator
from .transforms import PermuteSteps, RasterScan, RowsWithNoise, image_pipeline
from .wrappers import ImageArray

# Noise-padded CIFAR-10: 32 image rows + 968 noise steps = 1000 steps.
NOISE_PADDED_LENGTH = 1000


class ImageDatasetSpec(DatasetSpec):
    """Subclasses set image_size, in_channels, mean, std, sequential and implement
    ``load_raw`` and ``augment_ops``."""

    image_size: ClassVar[int]
    in_channels: ClassVar[int]
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]
    sequential: ClassVar[bool] = False  # True: the dataset yields sequences, not images

    @property
    def supports_resolution(self) -> bool:  # resizing only makes sense for the 2D form
        return not self.sequential

    # ----- shapes -------------------------------------------------------------------------------
    def meta(self, options: DataOptions) -> DatasetMeta:
        c, side = self.in_channels, self.image_size
        if not self.sequential:
            side = options.resolution or side
            return DatasetMeta(self.name, 2, c, self.num_classes, (c, side, side))
        if options.noise_padded:
            return DatasetMeta(self.name, 1, c * side, self.num_classes, (c * side, NOISE_PADDED_LENGTH))
        return DatasetMeta(self.name, 1, c, self.num_classes, (c, side * side))

    # ----- seeded state: pMNIST permutation / npCIFAR10 noise ------------------------------------
    def state_shapes(self, options: DataOptions) -> dict[str, tuple[int, ...]]:
        if options.permuted:
            return {"permutation": (self.image_size**2,)}
        if options.noise_padded:
            return {"noise": (NOISE_PADDED_LENGTH - self.image_size, self.in_channels * self.image_size)}
        return {}

    def init_state(self, options: DataOptions, seed: int) -> dict[str, torch.Tensor]:
        shapes = self.state_shapes(options)
        if "permutation" in shapes:
            (length,) = shapes["permutation"]
            return {"permutation": torch.randperm(length, generator=seeded_generator(seed, "permutation"))}
        if "noise" in shapes:
            # One N(0, 1) tensor shared by every sample.
            return {"noise": torch.randn(shapes["noise"], generator=seeded_generator(seed, "noise"))}
        return {}

    def check_state(self, options: DataOptions, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state = super().check_state(options, state)
        if "permutation" in state:
            perm = state["permutation"].long()
            if not torch.equal(perm.sort().values, torch.arange(perm.numel())):
                raise ValueError("state['permutation'] is not a permutation of 0..L-1")
            state["permutation"] = perm
        if "noise" in state:
            state["noise"] = state["noise"].float()
        return state

    # ----- transforms -----------------------------------------------------------------------------
    def augment_ops(self, augment: str) -> tuple[list, list]:
        """(PIL ops, tensor ops) of augmentation ``augment`` (already validated, not "None")."""
        raise NotImplementedError

    def transforms(self, options: DataOptions, state: Mapping[str, torch.Tensor]):
        to_sequence = None
        if self.sequential:
            if options.noise_padded:
                to_sequence = RowsWithNoise(state["noise"])
            elif options.permuted:
                to_sequence = Compose([RasterScan(), PermuteSteps(state["permutation"])])
            else:
                to_sequence = RasterScan()
        common = dict(mean=self.mean, std=self.std, resolution=options.resolution,
                      interpolation=options.interpolation, to_sequence=to_sequence)
        pil_ops, tensor_ops = ([], []) if options.augment == "None" else self.augment_ops(options.augment)
        train = image_pipeline(pil_augment=pil_ops, tensor_augment=tensor_ops, **common)
        evaluation = image_pipeline(**common)
        return train, evaluation

    # ----- synthetic stand-in -----------------------------------------------------------------
    def synthetic_raw(self, num_samples: int, generator: torch.Generator) -> ImageArray:
        shape = (num_samples, self.image_size, self.image_size)
        if self.in_channels > 1:
            shape += (self.in_channels,)  # HWC, as torchvision's CIFAR10 stores its images
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8).numpy()
        labels = torch.randint(0, self.num_classes, (num_samples,), generator=generator)
        return ImageArray(np.ascontiguousarray(images), labels.numpy())
