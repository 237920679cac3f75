"""Shared machinery of the time-series datasets (Speech Commands, Character Trajectories): per-channel
normalisation, dropped time steps with a mask channel, sampling rates, and the CKConv line's splits.

Options (``dataset_params.*``, taken by the datasets that list them in ``sequence_options``):

* ``drop_rate=p`` (percent; the CKConv recipes use 30, 50, 70): in every sample ``int(L * p / 100)`` of the
  ``L`` time steps are dropped, set to 0 after normalisation, and one input channel is added that is 1 where
  a step was kept and 0 where it was dropped (the original's mask channel). Which steps a sample loses is
  fixed by the run ``seed`` and the sample's position in the pooled data, so it is the same in every part
  (train / validation / test), every epoch, and when a checkpoint is evaluated later.
* ``sr_train=k``: training and validation sequences are every k-th sample (``x[:, ::k]``, length
  ``ceil(L / k)``), taken after dropping; ``sr_test=k``: the test sequences likewise (0 = ``sr_train``). A model
  trained at one rate is tested at another by resampling its continuous kernels (``engine/resample.py``).

Normalisation: every channel is centred and scaled by the mean and standard deviation of the training part
(all its time steps; ``(x - mean) / (std + 1e-5)``, as the original). The original computed these statistics
per time position instead of per channel, a side effect of its data layout; here they are per channel, as in
the NeuralCDE code it was taken from.

Splits: ``protocol=paper`` uses the CKConv line's 70 / 15 / 15 split of all (pooled) samples, stratified by
class and the same for every seed; the network is selected on the validation part and ``test_accuracy`` (at the
best validation epoch) is the published number. ``protocol=clean`` uses the dataset's own split (its training
and test files / lists), with a validation part held out of the training part where the dataset has none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import Dataset

from .registry import DataOptions, DatasetMeta, DatasetSpec, Part, Splits, derive_seed
from .splits import pooled_split, stratified_split

NORMALISATION_EPS = 1e-5  # added to the standard deviation, as the original
SAMPLING_OPTIONS = ("drop_rate", "sr_train", "sr_test")


def steps_at_rate(length: int, step: int) -> int:
    """Length of ``x[..., ::step]`` for a sequence of ``length`` samples: ``ceil(length / step)``."""
    return math.ceil(length / step)


def dropped_count(length: int, drop_rate: float) -> int:
    """Steps dropped from a sequence of ``length`` at ``drop_rate`` percent (rounded down, as the original)."""
    return int(length * float(drop_rate) / 100.0)


def kept_steps(length: int, drop_rate: float, seed: int, sample: int) -> torch.Tensor:
    """The float mask ``[length]`` of the steps sample number ``sample`` keeps (1) and drops (0), fixed by ``seed``."""
    keep = torch.ones(length)
    count = dropped_count(length, drop_rate)
    if count:
        generator = torch.Generator().manual_seed(derive_seed(seed, f"dropped-steps:{sample}"))
        keep[torch.randperm(length, generator=generator)[:count]] = 0.0
    return keep


def channel_stats(inputs: torch.Tensor, indices: torch.Tensor, scale: float = 1.0,
                  chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation ``[C]`` of ``inputs[indices] * scale`` (``inputs``: ``[N, C, L]``),
    over samples and time steps, accumulated in float64 in chunks (raw audio does not fit in memory as floats)."""
    count, total, squares = 0, 0.0, 0.0
    for start in range(0, len(indices), chunk):
        block = inputs[indices[start:start + chunk]].double() * scale  # [n, C, L]
        total = total + block.sum(dim=(0, 2))
        squares = squares + (block * block).sum(dim=(0, 2))
        count += block.shape[0] * block.shape[2]
    if count < 2:
        raise ValueError(f"{len(indices)} training samples are too few to normalise the data")
    mean = total / count
    var = (squares - count * mean * mean) / (count - 1)  # unbiased, as torch.std
    return mean.float(), var.clamp_min(0).sqrt().float()


class SequenceSet(Dataset):
    """Sequences ``inputs [N, C, L]`` (any dtype; multiplied by ``scale``) with their targets, processed per item:
    normalised per channel, ``drop_rate`` percent of the steps dropped (+ the mask channel), every ``step``-th
    sample kept. Item ``i`` -> ``([C (+1), ceil(L / step)] float32, targets[i])``; the drop pattern of item ``i``
    depends only on ``seed`` and ``i`` (:func:`kept_steps`)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, *, mean: torch.Tensor, std: torch.Tensor,
                 scale: float = 1.0, drop_rate: float = 0.0, seed: int = 0, step: int = 1):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} sequences but {len(targets)} targets")
        self.inputs, self.targets = inputs, targets
        self.mean = mean.float().reshape(-1, 1)
        self.std = std.float().reshape(-1, 1) + NORMALISATION_EPS
        self.scale, self.drop_rate, self.seed, self.step = float(scale), float(drop_rate), int(seed), int(step)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        x = (self.inputs[index].float() * self.scale - self.mean) / self.std
        if self.drop_rate > 0:
            keep = kept_steps(x.shape[-1], self.drop_rate, self.seed, index)
            x = torch.cat([x * keep, keep[None]], dim=0)
        if self.step > 1:
            x = x[:, ::self.step].contiguous()
        return x, self.targets[index]


@dataclass(frozen=True)
class SequenceParts:
    """All samples of a sequence dataset and which of them form each part: ``inputs [N, C, L]`` (times
    ``scale``), ``targets [N]``, index tensors ``train`` / ``val`` / ``test`` into them."""

    inputs: torch.Tensor
    targets: torch.Tensor
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    scale: float = 1.0


def pooled_parts(inputs: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> SequenceParts:
    """``protocol=paper``: the CKConv line's 70 / 15 / 15 split of all samples (:func:`datasets.splits.pooled_split`)."""
    train, val, test = pooled_split(targets)
    return SequenceParts(inputs, targets, train, val, test, scale)


def held_out_parts(inputs: torch.Tensor, targets: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
                   val_fraction: float, seed: int, scale: float = 1.0) -> SequenceParts:
    """``protocol=clean`` for a dataset with a training and a test part only: a stratified ``val_fraction`` of the
    training part (fixed by ``seed``) is held out for validation."""
    kept, held_out = stratified_split(targets[train], val_fraction, seed)
    if len(kept) == 0 or len(held_out) == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves an empty split of the {len(train)} training samples")
    return SequenceParts(inputs, targets, train[kept], train[held_out], test, scale)


class SequenceDatasetSpec(DatasetSpec):
    """A labelled time-series dataset held in memory: subclasses give the channels and length of a sample
    (:meth:`channels`, :meth:`full_length`) and :meth:`load_parts`; this class adds the sampling options."""

    sequence_options: ClassVar[tuple[str, ...]] = SAMPLING_OPTIONS
    in_memory = True

    def channels(self, options: DataOptions) -> int:
        raise NotImplementedError

    def full_length(self, options: DataOptions) -> int:
        raise NotImplementedError

    def load_parts(self, root: Path, options: DataOptions, *, protocol: str, val_fraction: float,
                   seed: int) -> SequenceParts:
        raise NotImplementedError

    # ----- shapes -----------------------------------------------------------------------------
    def input_channels(self, options: DataOptions) -> int:
        """Channels of a sample as the network sees it: the data's, plus the mask channel when steps are dropped."""
        return self.channels(options) + (1 if options.drop_rate > 0 else 0)

    def meta(self, options: DataOptions) -> DatasetMeta:
        c = self.input_channels(options)
        length = steps_at_rate(self.full_length(options), options.sr_train)
        return DatasetMeta(self.name, 1, c, self.num_classes, (c, length), self.task)

    def eval_input_shape(self, options: DataOptions) -> tuple[int, ...]:
        return (self.input_channels(options), steps_at_rate(self.full_length(options), options.test_step))

    # ----- data -------------------------------------------------------------------------------
    def load_splits(self, root, options: DataOptions, *, protocol: str, val_fraction: float, seed: int,
                    in_ram: bool = False, from_cache: bool = False, num_workers: int = 0) -> Splits:
        parts = self.load_parts(Path(root), options, protocol=protocol, val_fraction=val_fraction, seed=seed)
        mean, std = channel_stats(parts.inputs, parts.train, parts.scale)

        def at(step: int) -> SequenceSet:
            return SequenceSet(parts.inputs, parts.targets, mean=mean, std=std, scale=parts.scale,
                               drop_rate=options.drop_rate, seed=seed, step=step)

        train_set = at(options.sr_train)
        test_set = train_set if options.test_step == options.sr_train else at(options.test_step)
        return Splits(Part(train_set, parts.train), Part(train_set, parts.val), Part(test_set, parts.test))

    def synthetic_split(self, options: DataOptions, num_samples: int, generator: torch.Generator,
                        part: str) -> SequenceSet:
        inputs = torch.randn(num_samples, self.channels(options), self.full_length(options), generator=generator)
        labels = torch.randint(0, self.num_classes, (num_samples,), generator=generator)
        step = options.test_step if part == "test" else options.sr_train
        c = self.channels(options)
        return SequenceSet(inputs, labels, mean=torch.zeros(c), std=torch.ones(c), drop_rate=options.drop_rate,
                           step=step)
