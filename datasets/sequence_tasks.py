"""The generated memory tasks of the TCN / CKConv line: the adding problem and copy memory. No files: every part
is drawn from the run ``seed`` (a dedicated generator per part), so a checkpoint's config regenerates its test set.

``AddProblem`` (regression, inputs ``[2, T]``, ``T = dataset_params.seq_length``, default 100): channel 0 holds
``T`` values drawn uniformly from [0, 1), channel 1 marks two distinct random steps with 1 (zeros elsewhere); the
target is the sum of the two marked values. Predicting the mean (1.0) scores a mean squared error of 1/6, the
variance of the target; a network that solves the task gets far below it. 50000 training and 1000 test samples
(the original's sizes); the original code gave the network one input channel instead of these two.

``CopyMemory`` (per-step classification, inputs ``[1, T + 2M]``, ``T = seq_length`` (default 100) blank steps,
``M = dataset_params.memory_size`` (default 10) symbols): the input is ``M`` digits drawn from 1..8, ``T - 1``
zeros, then ``M + 1`` nines (the marker: "recall now"); the target is 0 at every step except the last ``M``, which
repeat the ``M`` digits. The network outputs 10 classes at every step; loss and accuracy are over all steps
(a network that always answers 0 gets ``(T + M) / (T + 2M)`` of them right, 91.7 % at the defaults; the last
``M`` steps are the hard part). 10000 training and 1000 test samples (the TCN repository's sizes).

Under ``protocol=clean`` a validation set of the test set's size is drawn as well; under ``paper`` the test set is
validated on, as for the image datasets.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils.data import Dataset

from .registry import (PER_STEP_CLASSIFICATION, REGRESSION, DataOptions, DatasetMeta, DatasetSpec, Part, Splits,
                       register_dataset, seeded_generator)

class GeneratedItems(Dataset):
    """Generated inputs ``[N, C, L]`` and targets ``[N]`` (regression, float) or ``[N, L]`` (per step, int64)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]


def adding_problem(num_samples: int, length: int, generator: torch.Generator) -> GeneratedItems:
    """Inputs ``[N, 2, length]`` (values, markers) and targets ``[N]`` (the sum of the two marked values)."""
    values = torch.rand(num_samples, length, generator=generator)
    first = torch.randint(0, length, (num_samples,), generator=generator)
    # A second, different position: an offset of 1..length-1 from the first, wrapped around.
    second = (first + torch.randint(1, length, (num_samples,), generator=generator)) % length
    markers = torch.zeros(num_samples, length)
    rows = torch.arange(num_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return GeneratedItems(torch.stack([values, markers], dim=1), targets)


def copy_memory(num_samples: int, blank: int, memory: int, generator: torch.Generator) -> GeneratedItems:
    """Inputs ``[N, 1, blank + 2 memory]`` and per-step targets ``[N, blank + 2 memory]`` (module docstring)."""
    digits = torch.randint(1, 9, (num_samples, memory), generator=generator)
    inputs = torch.cat([digits.float(), torch.zeros(num_samples, blank - 1),
                        torch.full((num_samples, memory + 1), 9.0)], dim=1)
    targets = torch.cat([torch.zeros(num_samples, memory + blank, dtype=torch.long), digits], dim=1)
    return GeneratedItems(inputs[:, None, :], targets)


class GeneratedTaskSpec(DatasetSpec):
    """A task drawn from the seed: subclasses set ``sizes`` (train, test) and :meth:`generate`."""

    in_memory = True
    sizes: ClassVar[tuple[int, int]]

    def generate(self, options: DataOptions, num_samples: int, generator: torch.Generator) -> GeneratedItems:
        raise NotImplementedError

    def load_splits(self, root, options: DataOptions, *, protocol: str, val_fraction: float, seed: int,
                    in_ram: bool = False, from_cache: bool = False, num_workers: int = 0) -> Splits:
        n_train, n_test = self.sizes

        def part(name: str, size: int) -> Part:
            return Part(self.generate(options, size, seeded_generator(seed, f"{self.name}-{name}")))

        val = part("val", n_test) if protocol == "clean" else None
        return Splits(part("train", n_train), val, part("test", n_test))

    def synthetic_split(self, options: DataOptions, num_samples: int, generator: torch.Generator,
                        part: str) -> GeneratedItems:
        return self.generate(options, num_samples, generator)


@register_dataset("AddProblem")
class AddProblem(GeneratedTaskSpec):
    """The adding problem: inputs ``[2, T]``, one real target per sample (regression)."""

    task = REGRESSION
    num_classes = 1                      # one output: the predicted sum
    sequence_options = ("seq_length",)
    sizes = (50000, 1000)
    default_length: ClassVar[int] = 100

    def length(self, options: DataOptions) -> int:
        return self.default_length if options.seq_length == -1 else options.seq_length

    def meta(self, options: DataOptions) -> DatasetMeta:
        return DatasetMeta(self.name, 1, 2, self.num_classes, (2, self.length(options)), self.task)

    def generate(self, options: DataOptions, num_samples: int, generator: torch.Generator) -> GeneratedItems:
        return adding_problem(num_samples, self.length(options), generator)


@register_dataset("CopyMemory")
class CopyMemory(GeneratedTaskSpec):
    """Copy memory: inputs ``[1, T + 2M]``, a class (0..9) per step."""

    task = PER_STEP_CLASSIFICATION
    num_classes = 10
    sequence_options = ("seq_length", "memory_size")
    sizes = (10000, 1000)
    default_blank: ClassVar[int] = 100
    default_memory: ClassVar[int] = 10

    def blank_and_memory(self, options: DataOptions) -> tuple[int, int]:
        blank = self.default_blank if options.seq_length == -1 else options.seq_length
        memory = self.default_memory if options.memory_size == -1 else options.memory_size
        return blank, memory

    def meta(self, options: DataOptions) -> DatasetMeta:
        blank, memory = self.blank_and_memory(options)
        return DatasetMeta(self.name, 1, 1, self.num_classes, (1, blank + 2 * memory), self.task)

    def generate(self, options: DataOptions, num_samples: int, generator: torch.Generator) -> GeneratedItems:
        blank, memory = self.blank_and_memory(options)
        return copy_memory(num_samples, blank, memory, generator)
