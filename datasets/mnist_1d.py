"""MNIST-1D (the default dataset): 10 classes of 1D signals, inputs [1, 40].

Generated offline with the ``mnist1d`` package from its default arguments (5000 samples, 80/20
split -> 4000 train / 1000 test, length 40, seed 42 - the arguments the package documents for its
published dataset) and cached as ``<root>/mnist1d/mnist1d_data.npz``. No normalisation is added:
the package already centres the whole dataset and scales it to unit standard deviation.

(Module named ``mnist_1d`` so that it cannot be confused with the ``mnist1d`` package it imports.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from .paths import DatasetNotAvailableError, atomic_write
from .registry import DataOptions, DatasetMeta, DatasetSpec, register_dataset
from .wrappers import TensorItems

CACHE_DIR_NAME = "mnist1d"
CACHE_FILE_NAME = "mnist1d_data.npz"
LENGTH = 40  # the package's default final_seq_length; checked against the data when loading


def _default_args() -> dict:
    try:
        import mnist1d  # lazy: the package pulls in scipy and matplotlib
    except ImportError as err:
        raise DatasetNotAvailableError(
            f"Dataset 'MNIST1D' needs the mnist1d package to be generated ({err}); "
            "install it with `pip install mnist1d` (see requirements.txt)."
        ) from None
    args = mnist1d.get_dataset_args(as_dict=True)
    args.pop("url", None)  # where the published copy lives; irrelevant to the content
    return args


def generate_mnist1d() -> dict[str, np.ndarray]:
    """Generate MNIST-1D from the package defaults: x [4000, 40], y [4000], x_test [1000, 40], y_test [1000].

    The package reseeds the GLOBAL numpy and ``random`` generators; their states are restored so
    that loading data does not change the run's random stream.
    """
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(ObjectView(_default_args()))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {key: np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test", "t")}


def load_mnist1d(root: Path) -> dict[str, np.ndarray]:
    """Arrays from the cache under ``root``, generating and caching them first if needed."""
    path = root / CACHE_DIR_NAME / CACHE_FILE_NAME
    args_json = json.dumps(_default_args(), sort_keys=True)
    if path.is_file():
        with np.load(path) as cached:
            # Regenerate if the package's defaults changed since the cache was written.
            if str(cached["args_json"]) == args_json:
                return {key: cached[key] for key in ("x", "y", "x_test", "y_test", "t")}
    data = generate_mnist1d()
    with atomic_write(path) as handle:  # concurrent runs never read a half-written cache
        np.savez(handle, args_json=np.array(args_json), **data)
    return data


def _as_items(x: np.ndarray, y: np.ndarray) -> TensorItems:
    """[N, L] float64 signals -> items [1, L] float32 (one input channel)."""
    return TensorItems(torch.as_tensor(x, dtype=torch.float32).unsqueeze(1), torch.as_tensor(y, dtype=torch.long))


@register_dataset("MNIST1D")
class MNIST1D(DatasetSpec):
    """MNIST-1D signals [1, 40], 10 classes; held in memory as tensors."""

    in_memory = True

    def meta(self, options: DataOptions) -> DatasetMeta:
        return DatasetMeta(self.name, 1, 1, self.num_classes, (1, LENGTH))

    def load_raw(self, root: Path):
        data = load_mnist1d(root)
        if data["x"].shape[1:] != (LENGTH,):
            raise RuntimeError(f"MNIST-1D signals have shape {data['x'].shape[1:]}, expected ({LENGTH},)")
        return _as_items(data["x"], data["y"]), _as_items(data["x_test"], data["y_test"])

    def synthetic_raw(self, num_samples: int, generator: torch.Generator) -> TensorItems:
        inputs = torch.randn(num_samples, 1, LENGTH, generator=generator)
        labels = torch.randint(0, self.num_classes, (num_samples,), generator=generator)
        return TensorItems(inputs, labels)
