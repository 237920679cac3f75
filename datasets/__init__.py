"""Datasets of the FlexConv experiments: one registry mapping config keys to loaders and metadata.

Keys (config ``dataset=...``; options from ``dataset_params.*``)::

    MNIST          [1, 28, 28]    augment None | standard      resolution=r -> [1, r, r]
    sMNIST         [1, 784]       raster scan; permuted=True -> pMNIST (fixed seeded permutation)
    FashionMNIST   [1, 28, 28]    like MNIST, own mean/std
    sFashionMNIST  [1, 784]       like sMNIST
    CIFAR10        [3, 32, 32]    augment None | resnet        resolution=r -> [3, r, r]
    sCIFAR10       [3, 1024]      noise_padded=True -> [96, 1000] (fixed seeded noise)
    CIFAR100       [3, 32, 32]    100 classes; like CIFAR10      resolution=r -> [3, r, r]
    STL10          [3, 96, 96]    augment None | resnet (+ cutout) resolution=r -> [3, r, r]
    MNIST1D        [1, 40]        default dataset, generated offline by the mnist1d package
    Imagenet8/16/32/64  [3, k, k] downsampled ImageNet, 1000 classes, augment None | resnet, resolution=r -> [3, r, r]
    Imagenet-k     [3, r, r]      the classes on disk; resolution=r picks the stored Imagenet{r} (default 32)
    SpeechCommands [1, 16000]     10 spoken words; mfcc=True -> [20, 161]; drop_rate, sr_train, sr_test
    CharTrajectories [3, 182]     UEA Character Trajectories, 20 classes; drop_rate, sr_train, sr_test
    AddProblem     [2, T]         generated, regression (T = seq_length, default 100)
    CopyMemory     [1, T + 2M]    generated, a class per step (T = seq_length, M = memory_size; 100, 10)

Usage::

    from datasets import build_data, dataset_meta
    meta = dataset_meta("sMNIST", permuted=True)             # no files needed
    data = build_data(DataSpec("sMNIST", batch_size=64, permuted=True, seed=0))
    ckpt["data_state"] = data.state                          # the permutation; restore with state=

Normalisation: MNIST mean 0.1307 / std 0.3081; Fashion-MNIST 0.2860 / 0.3530; CIFAR-10 and CIFAR-100
ImageNet statistics (as the original); STL-10 its own (as the original); MNIST-1D none beyond the
package's own standardisation.
Files live under the data root (``DEFAULT_DATA_ROOT`` = ``<project>/data``); torchvision downloads
them when they are missing; offline and missing -> ``DatasetNotAvailableError``.
"""

# Importing the modules registers their datasets (this order is the order of list_datasets()).
from . import mnist_1d, mnist, cifar10, cifar100, stl10, imagenet  # noqa: F401  isort:skip
from . import speech_commands, char_trajectories, sequence_tasks  # noqa: F401  isort:skip
from .builder import PROTOCOLS, SYNTHETIC_SIZES, DataBundle, build_data, default_num_workers, seed_worker, stratified_split
from .paths import DEFAULT_DATA_ROOT, RAW_FILE_SEARCH_PATHS, DatasetNotAvailableError
from .spec import DataSpec
from .transforms import INTERPOLATION_MODES
from .registry import DatasetMeta, DatasetSpec, dataset_meta, get_dataset_spec, list_datasets, register_dataset
from .registry import CLASSIFICATION, PER_STEP_CLASSIFICATION, REGRESSION, TASKS

__all__ = [
    "CLASSIFICATION",
    "PER_STEP_CLASSIFICATION",
    "REGRESSION",
    "TASKS",
    "DEFAULT_DATA_ROOT",
    "PROTOCOLS",
    "RAW_FILE_SEARCH_PATHS",
    "SYNTHETIC_SIZES",
    "DataBundle",
    "DataSpec",
    "INTERPOLATION_MODES",
    "DatasetMeta",
    "DatasetNotAvailableError",
    "DatasetSpec",
    "build_data",
    "dataset_meta",
    "default_num_workers",
    "get_dataset_spec",
    "list_datasets",
    "register_dataset",
    "seed_worker",
    "stratified_split",
]
