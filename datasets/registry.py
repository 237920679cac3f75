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


# What a dataset asks of the network and the trainer (``DatasetMeta.task``; engine/tasks.py implements them):
# one class per sample (cross-entropy, accuracy), one real value per sample (mean squared error), or one class
# per time step (cross-entropy and accuracy over every step; the network outputs [B, classes, L]).
CLASSIFICATION = "classification"
REGRESSION = "regression"
PER_STEP_CLASSIFICATION = "per_step_classification"
TASKS = (CLASSIFICATION, REGRESSION, PER_STEP_CLASSIFICATION)


@dataclass(frozen=True)
class DatasetMeta:
    """What a model needs to know about its input.

    input_shape excludes the batch: (C, L) for 1D data, (C, H, W) for 2D data, e.g. sMNIST (1, 784),
    noise-padded CIFAR-10 (96, 1000), CIFAR10 (3, 32, 32), MNIST1D (1, 40). For data at a sampling rate
    (``sr_train``) it is the shape of the training sequences. ``num_classes`` is the number of outputs per
    sample (per step for ``task="per_step_classification"``; 1 for the adding problem's regression).
    """

    name: str
    data_dim: int
    in_channels: int
    num_classes: int
    input_shape: tuple[int, ...]
    task: str = CLASSIFICATION

    def __post_init__(self) -> None:
        if self.data_dim not in (1, 2):
            raise ValueError(f"data_dim must be 1 or 2, got {self.data_dim}")
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not valid; allowed: {', '.join(TASKS)}")
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
    # Sequence options (``dataset_params.*``; the datasets that take one list it in ``sequence_options``).
    mfcc: bool = False           # Speech Commands: 20 MFCCs per frame instead of the raw waveform
    drop_rate: float = 0.0       # percent of the time steps of every sample dropped (+ a mask channel)
    sr_train: int = 1            # training (and validation) data: every sr_train-th sample
    sr_test: int = 0             # test data: every sr_test-th sample; 0 = sr_train
    seq_length: int = -1         # generated tasks: sequence length (-1 = the task's default)
    memory_size: int = -1        # copy memory: symbols to remember (-1 = the task's default)

    @property
    def test_step(self) -> int:
        """Every how many samples the test data is read (``sr_test``, or ``sr_train`` where it is 0)."""
        return self.sr_test or self.sr_train


# Defaults of the sequence options: a value other than these needs a dataset that lists the option.
SEQUENCE_OPTION_DEFAULTS = {"mfcc": False, "drop_rate": 0.0, "sr_train": 1, "sr_test": 0, "seq_length": -1,
                            "memory_size": -1}


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
    task: ClassVar[str] = CLASSIFICATION  # what the network and the trainer do with it (TASKS)
    augment_choices: ClassVar[tuple[str, ...]] = (AUGMENT_NONE,)
    supports_permuted: ClassVar[bool] = False
    supports_noise_padded: ClassVar[bool] = False
    supports_resolution: ClassVar[bool] = False
    # The sequence options (keys of SEQUENCE_OPTION_DEFAULTS) this dataset takes; others must keep their default.
    sequence_options: ClassVar[tuple[str, ...]] = ()
    # Data held as ready tensors in memory: worker processes would only add overhead.
    in_memory: ClassVar[bool] = False

    # ----- metadata and options ---------------------------------------------------------------
    def meta(self, options: DataOptions) -> DatasetMeta:
        raise NotImplementedError

    def eval_input_shape(self, options: DataOptions) -> tuple[int, ...]:
        """Shape of one test sample: ``meta(options).input_shape``, except for data tested at another sampling
        rate (``sr_test``) than it is trained at."""
        return self.meta(options).input_shape

    def check_options(self, *, augment, permuted, noise_padded, resolution, interpolation, mfcc=False,
                      drop_rate=0.0, sr_train=1, sr_test=0, seq_length=-1, memory_size=-1) -> DataOptions:
        """Validate the options for this dataset; errors name the bad value and the allowed ones."""
        sequence = dict(mfcc=mfcc, drop_rate=drop_rate, sr_train=sr_train, sr_test=sr_test, seq_length=seq_length,
                        memory_size=memory_size)
        _check_sequence_options(self, sequence)
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
        return DataOptions(augment, permuted, noise_padded, resolution, interpolation, **sequence)

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

    def load_splits(self, root, options: DataOptions, *, protocol: str, val_fraction: float, seed: int,
                    in_ram: bool = False, from_cache: bool = False, num_workers: int = 0) -> Splits:
        """The train, validation and test parts ``build_data`` wraps in loaders. By default: :meth:`load_data`'s
        training and test sets; under ``protocol="clean"`` a stratified ``val_fraction`` of the training set (fixed
        by ``seed``) is the validation part, under ``"paper"`` there is none (the test set is validated on).
        Datasets with their own splits (the CKConv line's 70/15/15 of the pooled data, generated tasks) override it."""
        from .splits import stratified_split

        train_raw, test_raw = self.load_data(root, options, in_ram=in_ram, from_cache=from_cache,
                                             num_workers=num_workers)
        if protocol != "clean":
            return Splits(Part(train_raw), None, Part(test_raw))
        train_idx, val_idx = stratified_split(train_raw.targets, val_fraction, seed)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise ValueError(
                f"val_fraction={val_fraction} leaves an empty split of the {len(train_raw)} training "
                f"samples of {self.name!r} ({len(train_idx)} train / {len(val_idx)} val)"
            )
        return Splits(Part(train_raw, train_idx), Part(train_raw, val_idx), Part(test_raw))

    def synthetic_raw(self, num_samples: int, generator: torch.Generator) -> Dataset:
        """A random raw dataset of ``num_samples`` items in the same raw form as ``load_raw``."""
        raise NotImplementedError

    def synthetic_split(self, options: DataOptions, num_samples: int, generator: torch.Generator,
                        part: str) -> Dataset:
        """One part (``"train"``, ``"val"`` or ``"test"``) of the synthetic stand-in: :meth:`synthetic_raw` by
        default; datasets whose options shape the raw items (sampling rates, dropped steps) override it."""
        return self.synthetic_raw(num_samples, generator)

    def transforms(
        self, options: DataOptions, state: Mapping[str, torch.Tensor]
    ) -> tuple[Optional[Callable], Optional[Callable]]:
        """(train transform, eval transform) mapping a raw item to a tensor of ``meta.input_shape``."""
        return None, None


@dataclass(frozen=True)
class Part:
    """One part of a dataset: the samples ``indices`` (all if None) of ``dataset``."""

    dataset: Dataset
    indices: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class Splits:
    """What :meth:`DatasetSpec.load_splits` returns; ``val`` None: validate on the test set (``protocol=paper``)."""

    train: Part
    val: Optional[Part]
    test: Part


def _check_sequence_options(spec: DatasetSpec, values: Mapping) -> None:
    """Ranges of the sequence options, and that a dataset only gets the ones it takes."""
    for option, value in values.items():
        default = SEQUENCE_OPTION_DEFAULTS[option]
        if value == default and isinstance(value, bool) == isinstance(default, bool):
            continue
        if option not in spec.sequence_options:
            takers = [name for name, other in _REGISTRY.items() if option in other.sequence_options]
            raise ValueError(f"{option}={value!r} is not supported by dataset {spec.name!r}; datasets that take "
                             f"it: {', '.join(takers) or 'none'}")
    mfcc, drop_rate = values["mfcc"], values["drop_rate"]
    if not isinstance(mfcc, bool):
        raise ValueError(f"mfcc must be True or False, got {mfcc!r}")
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 100:
        raise ValueError(f"drop_rate={drop_rate!r} is not valid; allowed: a percentage 0 <= drop_rate < 100 "
                         f"(the CKConv recipes use 30, 50 and 70)")
    for option, low in (("sr_train", 1), ("sr_test", 0)):
        value = values[option]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{option}={value!r} is not valid; allowed: an int >= {low} (read every k-th sample"
                             + (", 0 = sr_train)" if low == 0 else ")"))
    for option, low in (("seq_length", 2), ("memory_size", 1)):
        value = values[option]
        if isinstance(value, bool) or not isinstance(value, int) or (value != -1 and value < low):
            raise ValueError(f"{option}={value!r} is not valid; allowed: an int >= {low}, or -1 (the task's default)")


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


def dataset_meta(name: str, *, permuted: bool = False, noise_padded: bool = False, resolution: Optional[int] = None,
                 **sequence_options) -> DatasetMeta:
    """Metadata of dataset ``name`` with these options (``sequence_options``: ``mfcc``, ``drop_rate``, ``sr_train``,
    ``sr_test``, ``seq_length``, ``memory_size``); reads no files (used for synthetic inputs)."""
    spec = get_dataset_spec(name)
    options = spec.check_options(
        augment=AUGMENT_NONE, permuted=permuted, noise_padded=noise_padded,
        resolution=resolution, interpolation="bilinear", **sequence_options,
    )
    return spec.meta(options)
