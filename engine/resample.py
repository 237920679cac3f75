"""A trained sequence model at another sampling rate, without retraining: its continuous kernels resampled.

A network trained on every ``k``-th sample of a signal (``dataset_params.sr_train=k``) sees, at ``sr_test=k'``,
steps that are ``k' / k`` times as far apart. A CKConv / FlexConv kernel is a function on [-1, 1] sampled on
``n`` taps, one per training step, so at the test rate the same function is sampled on ``n'`` taps with

    n' - 1 = round((n - 1) * k / k')

(the same physical extent: ``k' > k`` gives fewer, farther-apart taps) and multiplied by ``(n - 1) / (n' - 1)``
(``CKConv.set_horizon(n', rescale=True)``; the original's ``kernel.sampling_rate_norm``), so that a sum over
fewer taps has the size of the sum over more. FlexConv masks live on the same [-1, 1] domain and crop the new
grid where they crop the old one. Discrete convolutions (``conv.type=Conv``) stay as they are.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Iterator

import torch

from ckconv import CKConv
from datasets import DataSpec


def resampled_grid(grid_size: int, trained_step: int, test_step: int) -> int:
    """Taps covering the same extent at ``test_step`` as ``grid_size`` taps at ``trained_step`` (at least 2)."""
    return max(2, int(round((grid_size - 1) * trained_step / test_step)) + 1)


def continuous_layers(model: torch.nn.Module) -> list[tuple[str, CKConv]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, CKConv)]


def probe(model: torch.nn.Module, input_shape: tuple[int, ...]) -> None:
    """One forward of a zero sample of ``input_shape`` in eval mode (no statistics change): resolves ``"same"``
    grids, and leaves each layer's ``kernel_size`` that of this input."""
    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)


@contextlib.contextmanager
def at_sampling_step(model: torch.nn.Module, trained_step: int, test_step: int,
                     input_shape: tuple[int, ...]) -> Iterator[dict[str, int]]:
    """``with at_sampling_step(model, k, k', shape) as grids:`` the model's CK layers resampled from data read at
    every ``k``-th sample (``input_shape``: a training sample) to every ``k'``-th; yields ``{layer: new grid}``.
    Afterwards every layer is back on its training grid exactly (its stored grid and kernel scale)."""
    if trained_step == test_step:
        yield {}
        return
    if any(module.grid_size == 0 for _, module in continuous_layers(model)):
        probe(model, input_shape)  # grids only known from an input: fix them at the training length first
    saved = [(module, module.horizon, module.get_extra_state()) for _, module in continuous_layers(model)]
    grids = {}
    try:
        for name, module in continuous_layers(model):
            new = resampled_grid(module.grid_size, trained_step, test_step)
            if new != module.grid_size:
                module.set_horizon(new, rescale=True)
            grids[name] = new
        yield grids
    finally:
        for module, horizon, state in saved:
            module.set_extra_state(state)  # the training grid and kernel scale, bit for bit
            module.horizon = horizon
        if saved:
            probe(model, input_shape)  # the layers' kernel sizes are the training ones again (logs, figures)


def at_test_rate(model: torch.nn.Module, data: DataSpec) -> ContextManager:
    """``with at_test_rate(model, spec.data): test = evaluate_with(...)``: the model at the rate its test data is
    read at (``sr_test``) for the test, on its training grids again afterwards; nothing happens where the test rate
    is the training rate (every dataset but the two that take sampling rates)."""
    if data.test_step == data.sr_train:
        return contextlib.nullcontext({})
    return at_sampling_step(model, data.sr_train, data.test_step, tuple(data.meta().input_shape))
