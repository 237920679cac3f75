"""Optimiser with tag-based parameter groups, and learning-rate schedules.

Groups come from the layers' own tags (``ckconv.nn.param_groups`` over ``group_parameters_by_tag``): FlexConv
mask parameters get ``train.mask_params_lr_factor * lr`` and learnable SIREN omega_0's
``train.omega_0_lr_factor * lr``.
Schedules are ``torch.optim.lr_scheduler`` objects; ``Schedule`` says when each one is stepped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim import lr_scheduler

from ckconv.nn import param_groups

from .specs import OptimSpec

COSINE_ETA_MIN = 1e-6  # the original's eta_min, applied to every group

# train.optimizer: name -> torch class (the keys are the allowed values).
OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD,
              "RMSprop": torch.optim.RMSprop}


def build_optimizer(model: torch.nn.Module, spec: OptimSpec) -> torch.optim.Optimizer:
    """The spec's optimiser over the layers' parameter groups. The spec's values were checked when the config
    was read (``config.validation``); an optimiser name outside :data:`OPTIMIZERS` is a KeyError."""
    groups = param_groups(model, spec.lr, mask_lr_factor=spec.mask_params_lr_factor,
                          omega_0_lr_factor=spec.omega_0_lr_factor)
    extra = {"momentum": spec.momentum, "nesterov": spec.nesterov} if spec.optimizer == "SGD" else {}
    return OPTIMIZERS[spec.optimizer](groups, lr=spec.lr, weight_decay=spec.weight_decay, **extra)


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    lines = [f"optimizer {type(optimizer).__name__}:"]
    for group in optimizer.param_groups:
        count = sum(p.numel() for p in group["params"])
        lines.append(f"  group {group.get('name', '?'):<8} lr {group['lr']:.3g}  ({len(group['params'])} tensors, "
                     f"{count:,} values)")
    return "\n".join(lines)


@dataclass
class Schedule:
    """The schedulers of a run and when to step them.

    ``per_step``: stepped after every optimiser step (warm-up, cosine). ``per_epoch``: stepped after
    each epoch (multistep, exponential). ``plateau``: stepped with the validation accuracy.
    """

    per_step: lr_scheduler.LRScheduler | None = None
    per_epoch: lr_scheduler.LRScheduler | None = None
    plateau: lr_scheduler.ReduceLROnPlateau | None = None
    per_step_until: float = math.inf  # a warm-up before a per-epoch schedule stops being stepped after W steps

    def step_iteration(self, global_step: int) -> None:
        """Call after optimiser step number ``global_step`` (1-based)."""
        if self.per_step is not None and global_step <= self.per_step_until:
            self.per_step.step()

    def step_epoch(self, val_accuracy: float) -> None:
        if self.per_epoch is not None:
            self.per_epoch.step()
        if self.plateau is not None:
            self.plateau.step(val_accuracy)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict() if getattr(self, name) is not None else None
                for name in ("per_step", "per_epoch", "plateau")}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            scheduler = getattr(self, name)
            if (scheduler is None) != (value is None):
                raise ValueError(f"checkpoint scheduler part {name!r} does not match train.scheduler")
            if scheduler is not None:
                scheduler.load_state_dict(value)
        if isinstance(self.per_step, lr_scheduler.LambdaLR):
            # The optimiser state restored the lr of the stored run; recompute the next step's lr from the
            # closed form, which follows the current train.epochs (a resumed run may have been extended).
            scheduler = self.per_step
            for group, base_lr, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base_lr * factor(scheduler.last_epoch)


def warmup_cosine_factors(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> list:
    """One lr multiplier function per parameter group, of the number of optimiser steps already taken.

    Optimiser step ``t = 1..W`` uses ``lr * t / W`` (the original's first step used lr 0); the
    following steps anneal from ``lr`` to ``COSINE_ETA_MIN`` (absolute, for every group) over the remaining
    ``total_steps - W`` steps and then stay there. A closed form of the step count, not a chain of
    schedulers: a run resumed with a larger ``train.epochs`` follows the schedule of its new length instead
    of restarting a periodic cosine from the stored one.
    """
    decay_steps = max(1, total_steps - warmup_steps)

    def factor_fn(base_lr: float):
        floor = min(COSINE_ETA_MIN / base_lr, 1.0) if base_lr > 0 else 0.0

        def factor(steps_done: int) -> float:
            if steps_done < warmup_steps:
                return (steps_done + 1) / warmup_steps
            progress = min(steps_done - warmup_steps, decay_steps) / decay_steps
            return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * progress)) / 2.0

        return factor

    return [factor_fn(group["lr"]) for group in optimizer.param_groups]


def _cosine(optimizer, spec: OptimSpec, warmup_steps: int, total_steps: int) -> Schedule:
    return Schedule(per_step=lr_scheduler.LambdaLR(optimizer, warmup_cosine_factors(optimizer, warmup_steps,
                                                                                    total_steps)))


def _warmup(optimizer, warmup_steps: int) -> Schedule:
    """Before a per-epoch schedule the warm-up is a LinearLR: it multiplies the current lr (chainable), so it
    composes with decays that fall inside the warm-up. Step t uses lr * t / W (W <= 1: no warm-up)."""
    return Schedule(per_step=lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0,
                                                   total_iters=warmup_steps - 1) if warmup_steps > 1 else None)


def _constant(optimizer, spec: OptimSpec, warmup_steps: int, total_steps: int) -> Schedule:
    return _warmup(optimizer, warmup_steps)


def _multistep(optimizer, spec: OptimSpec, warmup_steps: int, total_steps: int) -> Schedule:
    schedule = _warmup(optimizer, warmup_steps)
    schedule.per_epoch = lr_scheduler.MultiStepLR(optimizer, milestones=list(spec.decay_steps),
                                                  gamma=1.0 / spec.decay_factor)
    schedule.per_step_until = warmup_steps  # the warm-up's LinearLR stops; the per-epoch decay goes on
    return schedule


def _exponential(optimizer, spec: OptimSpec, warmup_steps: int, total_steps: int) -> Schedule:
    schedule = _warmup(optimizer, warmup_steps)
    # The original passes decay_factor itself as gamma (not its inverse).
    schedule.per_epoch = lr_scheduler.ExponentialLR(optimizer, gamma=spec.decay_factor)
    schedule.per_step_until = warmup_steps
    return schedule


def _plateau(optimizer, spec: OptimSpec, warmup_steps: int, total_steps: int) -> Schedule:
    schedule = _warmup(optimizer, warmup_steps)
    schedule.plateau = lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=1.0 / spec.decay_factor,
                                                      patience=spec.patience)
    return schedule


# train.scheduler: name -> builder (the keys are the allowed values; "" and "None" are read as "none").
SCHEDULERS = {"none": _constant, "cosine": _cosine, "multistep": _multistep, "plateau": _plateau,
              "exponential": _exponential}


def build_schedule(optimizer: torch.optim.Optimizer, spec: OptimSpec, epochs: int, steps_per_epoch: int) -> Schedule:
    """Schedules of ``epochs`` epochs, with the length taken from the actual loader (no hard-coded dataset sizes).

    Warm-up (``warmup_epochs > 0``, ``W`` = that many epochs of iterations) is linear per iteration: step ``t``
    uses ``lr * t / W``. Cosine then anneals per iteration to 1e-6 over the remaining iterations (see
    :func:`warmup_cosine_factors`). A run shorter than its warm-up simply ends inside it. The other schedules
    step per epoch (or on the validation accuracy) after the warm-up.
    """
    total_steps = max(1, epochs * steps_per_epoch)
    warmup_steps = int(round(max(0.0, float(spec.warmup_epochs)) * steps_per_epoch))
    return SCHEDULERS[spec.scheduler](optimizer, spec, warmup_steps, total_steps)
