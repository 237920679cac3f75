"""Seeded, stratified splits of a labelled dataset into parts.

``stratified_split`` holds out a validation fraction of a training set (``protocol=clean``);
``pooled_split`` is the CKConv line's 70 / 15 / 15 split of all samples of a set into train, validation
and test (Speech Commands and Character Trajectories under ``protocol=paper``).
"""
from __future__ import annotations

import torch

from .registry import seeded_generator

# The CKConv line's split of the pooled samples: 70 % train, then the rest halved into validation and test.
POOLED_TRAIN_FRACTION = 0.7
# The pooled split is the same for every run seed (the original fixed it with random_state 0, then 1), so
# that runs with different seeds are tested on the same samples.
POOLED_SPLIT_SEEDS = (0, 1)


def stratified_split(targets: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices 0..N-1 into (train, val) with class proportions kept.

    The validation set has round(val_fraction * N) samples; class c contributes
    floor(val_fraction * n_c), plus one for the classes with the largest remainders until the total
    is reached. Members are drawn with a generator fixed by ``seed``. Both index tensors are sorted,
    disjoint and together cover 0..N-1.
    """
    targets = torch.as_tensor(targets)
    labels, counts = torch.unique(targets, return_counts=True)  # sorted: independent of data order
    exact = val_fraction * counts.double()
    n_val = exact.floor().long()
    missing = int(round(val_fraction * len(targets))) - int(n_val.sum())
    largest_remainders = torch.argsort(exact - n_val, descending=True, stable=True)
    n_val[largest_remainders[:missing]] += 1

    generator = seeded_generator(seed, "validation-split")
    in_val = torch.zeros(len(targets), dtype=torch.bool)
    for label, k in zip(labels.tolist(), n_val.tolist()):
        members = torch.nonzero(targets == label).flatten()
        in_val[members[torch.randperm(len(members), generator=generator)[:k]]] = True
    return torch.nonzero(~in_val).flatten(), torch.nonzero(in_val).flatten()


def pooled_split(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) indices of all samples: 70 % train, 15 % validation, 15 % test, each stratified by
    class, the same for every run (fixed seeds). Sorted, disjoint, together 0..N-1."""
    targets = torch.as_tensor(targets)
    first, second = POOLED_SPLIT_SEEDS
    train, rest = stratified_split(targets, 1.0 - POOLED_TRAIN_FRACTION, first)
    val_in_rest, test_in_rest = stratified_split(targets[rest], 0.5, second)
    return train, rest[val_in_rest], rest[test_in_rest]
