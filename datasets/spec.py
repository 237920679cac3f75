"""What the data of a run is: the dataset key and its options as one frozen dataclass.

    spec = DataSpec("sMNIST", permuted=True, batch_size=64, seed=0)
    spec.meta()                 # DatasetMeta: shape, channels and classes (reads no files)
    data = build_data(spec)     # train / val / test loaders

Field names follow the config keys they come from: ``dataset`` (``name``), ``dataset_params.*``,
``train.batch_size`` / ``train.augment``, ``protocol``, ``seed`` and ``cross_res.resize`` / ``interpolation``
(``resolution``). ``build_data`` explains each option.

``mfcc``, ``drop_rate``, ``sr_train``, ``sr_test``, ``seq_length`` and ``memory_size`` (``dataset_params.*``) are
the options of the sequence datasets (Speech Commands, Character Trajectories, the adding problem, copy memory;
``datasets/sequences.py``); the other datasets reject a value other than the default.

``in_ram`` / ``from_cache`` (``dataset_params.*``) say how datasets read from image files hold them (the
downsampled ImageNet keys: decode once into memory / keep a memory-mapped cache file; see
``datasets/imagenet.py``); datasets that are held in memory anyway ignore them.

A dataset whose number of classes is read from its files (``Imagenet-k``: the classes found on disk) has
``meta()`` read that number from the data root (a folder listing, or the labels of one file); with
``synthetic=True`` (and in ``dataset_meta``, which reads no files) it reports its default (1000).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from .paths import resolve_root
from .registry import AUGMENT_NONE, DataOptions, DatasetMeta, DatasetSpec, dataset_meta, get_dataset_spec


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
    in_ram: bool = False                 # decode image files once into one uint8 tensor in memory
    from_cache: bool = False             # keep that tensor in a cache file under the data root (memory-mapped)
    # Sequence options (datasets/sequences.py; only the datasets that take one accept a non-default value).
    mfcc: bool = False                   # Speech Commands: MFCC features instead of the raw waveform
    drop_rate: float = 0.0               # percent of time steps dropped per sample (+ a mask channel)
    sr_train: int = 1                    # train / validate on every sr_train-th sample
    sr_test: int = 0                     # test on every sr_test-th sample; 0 = sr_train
    seq_length: int = -1                 # generated tasks: sequence length; -1 = the task's default
    memory_size: int = -1                # copy memory: symbols to remember; -1 = the task's default

    def sequence_options(self) -> dict:
        """The sequence options as keyword arguments of ``DatasetSpec.check_options`` / ``dataset_meta``."""
        return dict(mfcc=self.mfcc, drop_rate=self.drop_rate, sr_train=self.sr_train, sr_test=self.sr_test,
                    seq_length=self.seq_length, memory_size=self.memory_size)

    @property
    def task(self) -> str:
        """What the dataset asks of the network and the trainer (``datasets.TASKS``)."""
        return get_dataset_spec(self.name).task

    @property
    def test_step(self) -> int:
        """Every how many samples the test data is read: ``sr_test``, or ``sr_train`` where it is 0."""
        return self.sr_test or self.sr_train

    def meta(self, resolution: Optional[int] = None) -> DatasetMeta:
        """Shape, channels and classes of this data (at ``resolution`` if given). Reads no files, except the class
        count of a dataset that takes it from its data (``Imagenet-k``; not with ``synthetic``)."""
        resolution = self.resolution if resolution is None else resolution
        meta = dataset_meta(self.name, permuted=self.permuted, noise_padded=self.noise_padded, resolution=resolution,
                            **self.sequence_options())
        spec = get_dataset_spec(self.name)
        if self.synthetic or not getattr(spec, "classes_from_data", False):
            return meta
        options = spec.check_options(augment=AUGMENT_NONE, permuted=self.permuted, noise_padded=self.noise_padded,
                                     resolution=resolution, interpolation=self.interpolation,
                                     **self.sequence_options())
        return meta_from_data(spec, options, self.root)

    def at_sampling_rate(self, sr_test: int) -> "DataSpec":
        """This data with its test set read at every ``sr_test``-th sample (the model is trained at ``sr_train``)."""
        return replace(self, sr_test=sr_test)

    def at_resolution(self, resolution: int) -> "DataSpec":
        """This data at ``resolution`` px (what a cross-resolution phase at ``resolution`` reads): the images
        resized to it (no resize at the native size); for ``Imagenet-k`` the stored set ``Imagenet{resolution}``
        as it is. ``ValueError`` when the dataset has no data at that resolution."""
        from .imagenet import dataset_at_resolution

        name, option = dataset_at_resolution(self.name, resolution)
        return replace(self, name=name, resolution=option)


def meta_from_data(spec: DatasetSpec, options: DataOptions, root) -> DatasetMeta:
    """``spec.meta(options)``, with the number of classes read from the files under ``root`` for a dataset that
    takes it from its data (``classes_from_data``)."""
    meta = spec.meta(options)
    if getattr(spec, "classes_from_data", False):
        meta = replace(meta, num_classes=spec.data_num_classes(resolve_root(root), options))
    return meta
