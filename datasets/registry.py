"""Dataset registry: one ``DatasetSpec`` per config key (``dataset=...``) and its metadata.

A spec knows everything about one dataset key: its shape (``DatasetMeta``), which options it
accepts, how to load the raw train/test sets, the train/eval transforms, the seeded state (pMNIST
permutation, npCIFAR10 noise) and a synthetic stand-in. ``builder.build_data`` turns a spec into
loaders; models are built from ``DatasetMeta`` instead of if-chains over dataset names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping, Optional

import torch
from torch.utils.data import Dataset

from .transforms import INTERPOLATION_MODES

AUGMENT_NONE = "None"  # the original config's spelling; Python None is accepted as an alias


@dataclass(frozen=True)
class DatasetMeta:
    """What a model needs to know about its input.

    input_shape excludes the batch: (C, L) for 1D data, (C, H, W) for 2D data, e.g. sMNIST (1, 784),
    noise-padded CIFAR-10 (96, 1000), CIFAR10 (3, 32, 32), MNIST1D (1, 40).
    """

    name: str
    data_dim: int
    in_channels: int
    num_classes: int
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.data_dim not in (1, 2):
            raise ValueError(f"data_dim must be 1 or 2, got {self.data_dim}")
        if len(self.input_shape) != self.data_dim + 1 or self.input_shape[0] != self.in_channels:
            raise ValueError(
                f"input_shape {self.input_shape} does not match data_dim={self.data_dim}, "
                f"in_channels={self.in_channels}"
            )

    @property
    def length(self) -> int:
        """Sequence length (1D) or image side (2D, images are square)."""
        return self.input_shape[-1]


@dataclass(frozen=True)
class DataOptions:
    """Validated per-dataset options (see ``DatasetSpec.check_options``)."""

    augment: str = AUGMENT_NONE
    permuted: bool = False
    noise_padded: bool = False
    resolution: Optional[int] = None
    interpolation: str = "bilinear"


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose (split, shuffle, permutation, ...) derived from the run seed.

    Separate streams keep e.g. the validation split unchanged when the permutation code changes.
    sha256 rather than ``hash()`` because Python randomises string hashes per process.
    """
    digest = hashlib.sha256(f"{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def seeded_generator(seed: int, purpose: str) -> torch.Generator:
    """A dedicated CPU generator (never the global RNG) for ``purpose``."""
    return torch.Generator().manual_seed(derive_seed(seed, purpose))


class DatasetSpec:
    """Base class of registered datasets. Subclasses set the class attributes and override
    ``meta``, ``load_raw``, ``synthetic_raw`` and, where they have options, the state/transform hooks.

    Raw datasets (from ``load_raw`` / ``synthetic_raw``) return ``(item, int label)`` with item a PIL
    image (images) or a tensor (MNIST-1D) and expose ``targets`` (labels of all samples).
    """

    name: str = ""  # set by @register_dataset
    num_classes: int = 10
    augment_choices: ClassVar[tuple[str, ...]] = (AUGMENT_NONE,)
    supports_permuted: ClassVar[bool] = False
    supports_noise_padded: ClassVar[bool] = False
    supports_resolution: ClassVar[bool] = False
    # Data held as ready tensors in memory: worker processes would only add overhead.
    in_memory: ClassVar[bool] = False

    # ----- metadata and options ---------------------------------------------------------------
    def meta(self, options: DataOptions) -> DatasetMeta:
        raise NotImplementedError

    def check_options(self, *, augment, permuted, noise_padded, resolution, interpolation) -> DataOptions:
        """Validate the options for this dataset; errors name the bad value and the allowed ones."""
        augment = AUGMENT_NONE if augment is None else augment
        if augment not in self.augment_choices:
            raise ValueError(
                f"augment={augment!r} is not available for dataset {self.name!r}; "
                f"allowed: {', '.join(map(repr, self.augment_choices))}"
            )
        for flag, value, supported in (
            ("permuted", permuted, "supports_permuted"),
            ("noise_padded", noise_padded, "supports_noise_padded"),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
            if value and not getattr(self, supported):
                raise ValueError(
                    f"{flag}=True is not supported by dataset {self.name!r}; "
                    f"datasets that support it: {', '.join(_names_with(supported))}"
                )
        if resolution is not None:
            if not self.supports_resolution:
                raise ValueError(
                    f"resolution={resolution!r} is not supported by dataset {self.name!r} (only 2D image "
                    f"datasets can be resized): {', '.join(_names_with('supports_resolution'))}"
                )
            if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0:
                raise ValueError(f"resolution must be a positive int (image side in pixels) or None, got {resolution!r}")
        if interpolation not in INTERPOLATION_MODES:
            raise ValueError(f"interpolation={interpolation!r} is not valid; allowed: {', '.join(INTERPOLATION_MODES)}")
        return DataOptions(augment, permuted, noise_padded, resolution, interpolation)

    # ----- seeded state stored in checkpoints -------------------------------------------------
    def state_shapes(self, options: DataOptions) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the state tensors this configuration needs ({} if none)."""
        return {}

    def init_state(self, options: DataOptions, seed: int) -> dict[str, torch.Tensor]:
        """Draw the state from generators seeded by ``seed`` (never the global RNG)."""
        return {}

    def check_state(self, options: DataOptions, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validate a state restored from a checkpoint; returns CPU tensors."""
        expected = self.state_shapes(options)
        if set(state) != set(expected):
            raise ValueError(
                f"state for dataset {self.name!r} with {options} must have keys {sorted(expected)}, "
                f"got {sorted(state)} (was the checkpoint made with other dataset_params?)"
            )
        out = {}
        for key, shape in expected.items():
            tensor = torch.as_tensor(state[key]).detach().cpu()
            if tuple(tensor.shape) != shape:
                raise ValueError(f"state[{key!r}] must have shape {shape}, got {tuple(tensor.shape)}")
            out[key] = tensor
        return out

    # ----- data -------------------------------------------------------------------------------
    def load_raw(self, root) -> tuple[Dataset, Dataset]:
        """(train, test) raw datasets read from ``root``; raise DatasetNotAvailableError if absent."""
        raise NotImplementedError

    def load_data(self, root, options: DataOptions, *, in_ram: bool = False, from_cache: bool = False,
                  num_workers: int = 0) -> tuple[Dataset, Dataset]:
        """What ``build_data`` loads: :meth:`load_raw`, for datasets whose files are read as they are. Datasets
        that can hold decoded images in several ways (``in_ram``, ``from_cache``; downsampled ImageNet) override
        it; ``num_workers`` processes may decode."""
        return self.load_raw(root)

    def synthetic_raw(self, num_samples: int, generator: torch.Generator) -> Dataset:
        """A random raw dataset of ``num_samples`` items in the same raw form as ``load_raw``."""
        raise NotImplementedError

    def transforms(
        self, options: DataOptions, state: Mapping[str, torch.Tensor]
    ) -> tuple[Optional[Callable], Optional[Callable]]:
        """(train transform, eval transform) mapping a raw item to a tensor of ``meta.input_shape``."""
        return None, None


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(name: str):
    """Class decorator: ``@register_dataset("MNIST")`` registers one instance under ``name``."""

    def decorator(cls):
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is already registered")
        spec = cls()
        spec.name = name
        _REGISTRY[name] = spec
        return cls

    return decorator


def list_datasets() -> list[str]:
    """Registered dataset keys, in registration order."""
    return list(_REGISTRY)


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown dataset {name!r}; registered datasets: {', '.join(_REGISTRY)}") from None


def _names_with(attribute: str) -> list[str]:
    return [name for name, spec in _REGISTRY.items() if getattr(spec, attribute)]


def dataset_meta(name: str, *, permuted: bool = False, noise_padded: bool = False, resolution: Optional[int] = None) -> DatasetMeta:
    """Metadata of dataset ``name`` with these options; reads no files (used for synthetic inputs)."""
    spec = get_dataset_spec(name)
    options = spec.check_options(
        augment=AUGMENT_NONE, permuted=permuted, noise_padded=noise_padded,
        resolution=resolution, interpolation="bilinear",
    )
    return spec.meta(options)
