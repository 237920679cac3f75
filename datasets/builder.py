"""``build_data``: a registered dataset + options -> train / val / test DataLoaders.

Protocols:
  * ``clean`` (default): validation is a stratified, seed-fixed ``val_fraction`` of the training set
    (with the eval transforms); the test set is only for the final report.
  * ``paper``: train on the full training set and validate on the test set, as the original did
    (its "best test accuracy" protocol), so numbers compare with the paper.

A dataset may define its own parts (``DatasetSpec.load_splits``): Speech Commands and Character Trajectories
use the CKConv line's 70 / 15 / 15 split of the pooled samples under ``paper`` (a real validation part, as the
original had for these sets), the generated tasks draw a separate validation set under ``clean``.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .paths import resolve_root
from .registry import DatasetMeta, derive_seed, get_dataset_spec, seeded_generator
from .spec import DataSpec, meta_from_data
from .splits import stratified_split  # noqa: F401  (re-exported: datasets.builder.stratified_split)
from .wrappers import Transformed

PROTOCOLS = ("clean", "paper")  # the allowed values of ``protocol`` (see the module docstring)
# Sizes of the synthetic stand-in (train, val, test): smoke tests and profiling only.
SYNTHETIC_SIZES = (64, 32, 32)


@dataclass
class DataBundle:
    """Everything the trainer needs from the data side.

    state: tensors to store in checkpoints and pass back as ``build_data(state=...)`` when resuming
    or evaluating ({"permutation": LongTensor[784]} for pMNIST, {"noise": FloatTensor[968, 96]} for
    noise-padded CIFAR-10, {} otherwise). With distributed=True the training loader's sampler is a
    DistributedSampler (the trainer calls its ``set_epoch`` every epoch) and the val/test loaders iterate
    this rank's :class:`EvalShard`. With protocol="paper" ``val_loader is test_loader`` (except for datasets
    whose paper protocol has a validation part of its own).
    """

    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader
    meta: DatasetMeta
    state: dict[str, torch.Tensor] = field(default_factory=dict)


class EvalShard(Sampler[int]):
    """One rank's share of an evaluation set: indices ``rank, rank + world_size, ...`` in order.

    The shards are disjoint and together hold every sample exactly once (torch's DistributedSampler
    instead pads with repeated samples, which would count them twice), so summing the per-rank loss,
    correct and sample counts (``engine.trainer.evaluate``) gives the exact metrics of the whole set.
    """

    def __init__(self, size: int, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.size, self.rank, self.world_size = size, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.size, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy and ``random`` from the worker's torch seed.

    PyTorch gives each worker torch seed = base seed (drawn from the loader's seeded generator) +
    worker id; numpy/random would otherwise be copies of the parent's state in every worker.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def default_num_workers() -> int:
    """min(4, usable CPUs - 1): leaves one core for the training process."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS / Windows
        cpus = os.cpu_count() or 1
    return max(0, min(4, cpus - 1))


def _loader(dataset: Dataset, *, batch_size: int, shuffle: bool, seed: int, purpose: str,
            num_workers: int, pin_memory: bool, sampler=None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        worker_init_fn=seed_worker,
        # Seeds the shuffle order and the workers' base seed (so augmentations in workers repeat).
        generator=seeded_generator(seed, purpose),
        # Workers are re-created every epoch, so their seeds derive from the generator's state at the
        # epoch start (which the trainer fixes per epoch): a resumed run augments exactly as an
        # uninterrupted one. Persistent workers would carry their RNG streams across epochs.
        persistent_workers=False,
    )


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not valid; allowed: {', '.join(map(repr, allowed))}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@contextmanager
def _rank_zero_first(distributed: bool):
    """Under torch.distributed, rank 0 prepares (downloads / generates) the files before the other
    ranks read them, so that ranks never write into the same directory at once."""
    if distributed and dist.get_rank() != 0:
        dist.barrier()
    yield
    if distributed and dist.get_rank() == 0:
        dist.barrier()


def build_data(
    data: DataSpec | str,
    *,
    state: Optional[Mapping[str, torch.Tensor]] = None,
    distributed: bool = False,
    pin_memory: bool = False,
    **options,
) -> DataBundle:
    """Loaders and metadata of the data described by ``data``: a :class:`DataSpec`, or a dataset key (of
    ``list_datasets()``) with the spec's fields as keyword arguments (``build_data("sMNIST", permuted=True)``).

    Every batch is ``(inputs [B, *meta.input_shape] float32, targets)``: labels ``[B]`` int64 for classification,
    ``[B, L]`` int64 for per-step classification (copy memory), ``[B]`` float32 for regression (adding problem).

    The spec's options:
    root: data root (None -> DEFAULT_DATA_ROOT; relative -> relative to the project root).
    batch_size: of every loader (training, validation and test, as the original).
    augment: "None" | "standard" (MNIST family) | "resnet" (CIFAR-10); train split only.
    protocol: "clean" | "paper" (module docstring); val_fraction: held-out fraction for "clean".
    seed: fixes the validation split, shuffling, worker seeds and a newly drawn permutation/noise.
    num_workers: None -> 0 for in-memory datasets (MNIST-1D, synthetic), else default_num_workers().
    in_ram / from_cache: decode image files once into memory / keep them in a memory-mapped cache file
        (the downsampled ImageNet keys; datasets read as they are ignore them).
    mfcc, drop_rate, sr_train, sr_test, seq_length, memory_size: the sequence options of the datasets that
        take them (``DatasetSpec.sequence_options``; see datasets/sequences.py).
    synthetic: no files; random data of the dataset's exact shapes and classes (SYNTHETIC_SIZES
        samples), deterministic from ``seed``. For smoke tests and profiling, NEVER for results.

    And of this call:
    state: permutation/noise restored from a checkpoint (used instead of drawing new ones).
    distributed: shard the training set with a DistributedSampler and val/test with an
        :class:`EvalShard` each (needs torch.distributed initialised): every rank evaluates its own
        disjoint part, and ``engine.trainer.evaluate`` sums the parts.
    pin_memory: page-locked batches (for copies to a GPU).
    """
    if isinstance(data, str):
        data = DataSpec(data, **options)
    elif options:
        raise TypeError(f"build_data got a DataSpec and options {sorted(options)}; set them in the spec")
    name, root, batch_size, protocol = data.name, data.root, data.batch_size, data.protocol
    val_fraction, seed, num_workers = data.val_fraction, data.seed, data.num_workers
    spec = get_dataset_spec(name)
    options = spec.check_options(augment=data.augment, permuted=data.permuted, noise_padded=data.noise_padded,
                                 resolution=data.resolution, interpolation=data.interpolation,
                                 **data.sequence_options())
    _check_choice("protocol", protocol, PROTOCOLS)
    if protocol == "clean" and not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be in (0, 1) for protocol='clean', got {val_fraction!r}")
    _check_positive_int("batch_size", batch_size)
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0):
        raise ValueError(f"num_workers must be None or an int >= 0, got {num_workers!r}")
    if distributed and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("build_data(distributed=True) needs torch.distributed to be initialised first")

    meta = spec.meta(options) if data.synthetic else meta_from_data(spec, options, root)
    state = spec.init_state(options, seed) if state is None else spec.check_state(options, state)
    train_tf, eval_tf = spec.transforms(options, state)

    if data.synthetic:
        n_train, n_val, n_test = SYNTHETIC_SIZES
        generator = seeded_generator(seed, "synthetic")
        train_set = Transformed(spec.synthetic_split(options, n_train, generator, "train"), None, train_tf)
        val_set = Transformed(spec.synthetic_split(options, n_val, generator, "val"), None, eval_tf)
        test_set = Transformed(spec.synthetic_split(options, n_test, generator, "test"), None, eval_tf)
        if protocol == "paper":
            val_set = None
        in_memory = True
    else:
        with _rank_zero_first(distributed):
            splits = spec.load_splits(
                resolve_root(root), options, protocol=protocol, val_fraction=val_fraction, seed=seed,
                in_ram=data.in_ram, from_cache=data.from_cache,
                num_workers=default_num_workers() if num_workers is None else num_workers)
        train_set = Transformed(splits.train.dataset, splits.train.indices, train_tf)
        # Validation with the eval transforms: no augmentation.
        val_set = None if splits.val is None else Transformed(splits.val.dataset, splits.val.indices, eval_tf)
        test_set = Transformed(splits.test.dataset, splits.test.indices, eval_tf)
        in_memory = spec.in_memory

    # Fail early (not mid-epoch) if the files do not have the shape the model will be built for (or, for data
    # tested at another sampling rate, the test shape).
    sample_shape, expected = tuple(test_set[0][0].shape), tuple(spec.eval_input_shape(options))
    if sample_shape != expected:
        raise RuntimeError(f"{name} samples have shape {sample_shape}, but its metadata says {expected}")

    if num_workers is None:
        num_workers = 0 if in_memory else default_num_workers()
    sampler = None
    if distributed:
        sampler = DistributedSampler(train_set, shuffle=True, seed=derive_seed(seed, "distributed-shuffle") % 2**31,
                                     drop_last=False)
    common = dict(seed=seed, num_workers=num_workers, pin_memory=pin_memory)
    train_loader = _loader(train_set, batch_size=batch_size, shuffle=True, purpose="train-loader",
                           sampler=sampler, **common)

    def eval_shard(dataset):
        return EvalShard(len(dataset), dist.get_rank(), dist.get_world_size()) if distributed else None

    test_loader = _loader(test_set, batch_size=batch_size, shuffle=False, purpose="test-loader",
                          sampler=eval_shard(test_set), **common)
    if val_set is None:
        val_loader = test_loader  # protocol "paper": select on the test set, as the original
    else:
        val_loader = _loader(val_set, batch_size=batch_size, shuffle=False, purpose="val-loader",
                             sampler=eval_shard(val_set), **common)
    return DataBundle(train_loader, val_loader, test_loader, meta, dict(state))
