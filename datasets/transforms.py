"""Transforms: image pipelines (torchvision) and the image -> sequence conversions.

The original reshaped batches into sequences inside the trainer and tester; here
the dataset pipeline does it per sample, so the trainer stays dataset-agnostic and train, val and
test go through the same fixed permutation / noise.

All transforms are top-level classes (not lambdas) so DataLoader workers can pickle them.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torchvision import transforms as T

INTERPOLATION_MODES = {"bilinear": T.InterpolationMode.BILINEAR, "nearest": T.InterpolationMode.NEAREST}


class RasterScan:
    """[C, H, W] -> [C, H*W]: row-major scan, pixel (h, w) becomes time step h*W + w."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.reshape(image.shape[0], -1)

    def __repr__(self) -> str:
        return "RasterScan()"


class PermuteSteps:
    """[C, L] -> [C, L] with steps reordered: out[:, i] = x[:, permutation[i]] (pMNIST)."""

    def __init__(self, permutation: torch.Tensor):
        self.permutation = permutation

    def __call__(self, sequence: torch.Tensor) -> torch.Tensor:
        return sequence[:, self.permutation]

    def __repr__(self) -> str:
        return f"PermuteSteps(length={self.permutation.numel()})"


class RowsWithNoise:
    """Noise-padded sequence: [C, H, W] -> [C*W, H + T_noise].

    Time step t < H is row t of every channel concatenated (R row t, then G row t, then B row t:
    C*W features); the fixed ``noise`` [T_noise, C*W] (one tensor shared by every sample) follows as
    T_noise further steps. CIFAR-10: [3, 32, 32] -> [96, 32 + 968] = [96, 1000].
    """

    def __init__(self, noise: torch.Tensor):
        self.noise = noise
        self._noise_t = noise.t().contiguous()  # [C*W, T_noise], transposed once, not per sample

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c, h, w = image.shape
        out = torch.empty(c * w, h + self._noise_t.shape[1], dtype=image.dtype)
        out[:, :h] = image.permute(0, 2, 1).reshape(c * w, h)  # out[c*W + w, t] = image[c, t, w]
        out[:, h:] = self._noise_t
        return out

    def __repr__(self) -> str:
        return f"RowsWithNoise(noise_steps={self.noise.shape[0]})"


class Cutout:
    """Zero ``holes`` square holes of side ``length`` in a normalised tensor image [C, H, W] (all channels).

    Each hole is centred on a pixel drawn uniformly from the whole image and clipped at the borders, so a
    hole near an edge is smaller than ``length`` x ``length`` (rows ``max(0, y - length // 2)`` to
    ``min(H, y + length // 2)``, the same for columns). Zero is the dataset mean after normalisation.
    The centres come from torch's global RNG, like torchvision's random transforms: a DataLoader
    seeds it per worker and per epoch, so cutout repeats with the run's seed and on resume.
    """

    def __init__(self, length: int, holes: int = 1):
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise ValueError(f"Cutout length must be a positive int, got {length!r}")
        if isinstance(holes, bool) or not isinstance(holes, int) or holes <= 0:
            raise ValueError(f"Cutout holes must be a positive int, got {holes!r}")
        self.length = length
        self.holes = holes

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        out = image.clone()
        half = self.length // 2
        for _ in range(self.holes):
            y = int(torch.randint(height, ()))
            x = int(torch.randint(width, ()))
            out[..., max(0, y - half):min(height, y + half), max(0, x - half):min(width, x + half)] = 0
        return out

    def __repr__(self) -> str:
        return f"Cutout(length={self.length}, holes={self.holes})"


def image_pipeline(
    *,
    mean: Sequence[float],
    std: Sequence[float],
    pil_augment: Sequence = (),
    tensor_augment: Sequence = (),
    resolution: Optional[int] = None,
    interpolation: str = "bilinear",
    to_sequence: Optional[object] = None,
) -> T.Compose:
    """PIL image -> normalised tensor [C, H, W] (or a sequence when ``to_sequence`` is given).

    Order: geometric PIL augmentations (flip/crop/...), Resize (after them, as the original's
    cross-resolution runs did), ToTensor, Normalize, tensor augmentations (RandomErasing), sequence
    conversion.
    """
    ops = list(pil_augment)
    if resolution is not None:
        ops.append(T.Resize((resolution, resolution), interpolation=INTERPOLATION_MODES[interpolation]))
    ops += [T.ToTensor(), T.Normalize(mean, std), *tensor_augment]
    if to_sequence is not None:
        ops.append(to_sequence)
    return T.Compose(ops)


def cifar_resnet_augment(image_size: int) -> list:
    """The ResNet augmentation: zero-padding image_size//8 + random crop back to image_size, random
    horizontal flip. Padding happens before normalisation, so padded pixels become -mean/std."""
    return [T.RandomCrop(image_size, padding=image_size // 8), T.RandomHorizontalFlip(p=0.5)]


def mnist_standard_augment() -> tuple[list, list]:
    """The original's MNIST ``standard`` set: (PIL ops, tensor ops).

    Each geometric op with p=0.5: rotation up to +-30 degrees, translation up to 2/28 of the image,
    scaling in [0.75, 1]; after normalisation RandomErasing(p=0.5) of a square covering 4/28 of the
    area (the original's value, kept), filled with 0 (= the dataset mean after normalisation).
    """
    pil_ops = [
        T.RandomApply([T.RandomRotation(30)], p=0.5),
        T.RandomApply([T.RandomAffine(0, translate=(2 / 28, 2 / 28))], p=0.5),
        T.RandomApply([T.RandomAffine(0, scale=(0.75, 1.0))], p=0.5),
    ]
    tensor_ops = [T.RandomErasing(p=0.5, scale=(4 / 28, 4 / 28), ratio=(1.0, 1.0), value=0)]
    return pil_ops, tensor_ops
