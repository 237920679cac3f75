"""What the data of a run is: the dataset key and its options as one frozen dataclass.

    spec = DataSpec("sMNIST", permuted=True, batch_size=64, seed=0)
    spec.meta()                 # DatasetMeta: shape, channels and classes (reads no files)
    data = build_data(spec)     # train / val / test loaders

Field names follow the config keys they come from: ``dataset`` (``name``), ``dataset_params.*``,
``train.batch_size`` / ``train.augment``, ``protocol``, ``seed`` and ``cross_res.resize`` / ``interpolation``
(``resolution``). ``build_data`` explains each option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .registry import AUGMENT_NONE, DatasetMeta, dataset_meta


@dataclass(frozen=True)
class DataSpec:
    name: str = "MNIST1D"
    root: Optional[str] = None           # None = DEFAULT_DATA_ROOT
    batch_size: int = 64                 # training and evaluation batches
    augment: Optional[str] = AUGMENT_NONE
    protocol: str = "clean"
    val_fraction: float = 0.1
    seed: int = 0
    num_workers: Optional[int] = None    # None = 0 for in-memory data, else default_num_workers()
    permuted: bool = False
    noise_padded: bool = False
    resolution: Optional[int] = None     # image side to resize to; None = native
    interpolation: str = "bilinear"
    synthetic: bool = False

    def meta(self, resolution: Optional[int] = None) -> DatasetMeta:
        """Shape, channels and classes of this data (at ``resolution`` if given); reads no files."""
        return dataset_meta(self.name, permuted=self.permuted, noise_padded=self.noise_padded,
                            resolution=self.resolution if resolution is None else resolution)
