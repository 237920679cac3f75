"""What a run is, as frozen dataclasses: the engine takes a :class:`RunSpec` and never reads the Hydra config.

``config.read_run_spec`` makes one from the composed config (merging a checkpoint's stored config where a run
resumes or evaluates one), after validating it once. Each part is what one piece of the engine needs:

* ``model`` (:class:`models.ModelSpec`) builds the network, ``data`` (:class:`datasets.DataSpec`) the loaders;
* ``optim``: optimiser, learning rates and schedule; ``loss``: the extra loss terms;
* ``loop``: epochs, early stopping, batch limits, logging cadence;
* ``runtime``: device, precision, compilation, W&B, resume and pretrained weights: how to run, never what
  was trained, so these come from the current command even when a checkpoint's config is read;
* ``cross_res`` and ``profile``: the settings of ``run_crossres.py`` and ``run_profiler.py``.

``RunSpec.config`` is the resolved config as a plain dict: logged to W&B and stored in checkpoints, so a
checkpoint can be evaluated or resumed without the command that made it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from datasets import DataSpec
from models import ModelSpec


@dataclass(frozen=True)
class OptimSpec:
    """Optimiser and learning-rate schedule (``train.optimizer*``, ``train.scheduler*``, lr factors)."""

    optimizer: str = "Adam"
    lr: float = 0.01
    mask_params_lr_factor: float = 0.1
    omega_0_lr_factor: float = 1.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0            # the optimiser's (decoupled for AdamW)
    scheduler: str = "cosine"            # "none" for a constant lr
    decay_steps: tuple[int, ...] = ()    # multistep milestones (epochs)
    decay_factor: float = -1.0
    patience: int = -1
    warmup_epochs: int = 2               # -1 = none
    grad_clip: float = 0.0               # global gradient L2 norm, 0 = off


@dataclass(frozen=True)
class AntiAliasingSpec:
    """The anti-aliasing penalty (``kernel.regularize_params``); ``res=None``: from the kernel grid."""

    res: Optional[int] = None
    res_offset: int = 0
    target: str = "gabor+mask"
    fn: str = "l2_relu"
    method: str = "together"
    factor: float = 0.001
    gauss_stddevs: float = 2.0


@dataclass(frozen=True)
class LossSpec:
    """Terms added to the cross-entropy: the kernel-norm penalty (``train.weight_decay``) and, when
    ``kernel.regularize``, the anti-aliasing penalty."""

    kernel_norm: float = 0.0
    anti_aliasing: Optional[AntiAliasingSpec] = None


@dataclass(frozen=True)
class LoopSpec:
    """The epoch loop (``train.*``)."""

    train: bool = True                   # False: evaluate a checkpoint
    epochs: int = 50
    early_stop_patience: int = 100       # -1 = never
    limit_train_batches: int = -1
    limit_eval_batches: int = -1
    report_top5: bool = False
    log_every: int = 50
    plot_every: int = 0                  # -1 = never draw figures
    dropout_in: float = 0.0
    test_before_train: bool = False
    test_sampling_rates: tuple[int, ...] = ()   # evaluate a checkpoint at these sr_test values (engine/sampling_rates.py)


@dataclass(frozen=True)
class WandbSpec:
    project: str = "flexconv"
    entity: Optional[str] = None
    dir: str = "./wandb"
    mode: str = "auto"                   # after ``debug``: offline
    debug: bool = False


@dataclass(frozen=True)
class WandbFileSpec:
    """``pretrained_wandb=True``: a file of a W&B run, downloaded into the run directory before it is loaded."""

    run_path: str                        # entity/project/run id
    filename: str                        # e.g. final_model.pt (an original checkpoint) or checkpoints/best.pt


@dataclass(frozen=True)
class RuntimeSpec:
    """How to run: taken from the current command even when a checkpoint's config is read."""

    device: str = "auto"
    seed: int = 0                        # -1 = draw one
    deterministic: bool = False
    mixed_precision: bool = False
    compile: Union[bool, str] = False    # False or a torch.compile backend
    channels_last: bool = False
    resume: Union[bool, str] = False     # False | True | "auto" | a path
    pretrained: Optional[str] = None     # checkpoint whose weights to load first
    pretrained_wandb: Optional[WandbFileSpec] = None  # ... or a W&B run's file (engine.build.pretrained_file)
    pretrained_strict: bool = True
    summary_depth: Optional[int] = None  # print a per-module parameter table this deep
    wandb: WandbSpec = field(default_factory=WandbSpec)

    @property
    def loads_pretrained(self) -> bool:
        """Weights come from a checkpoint file (``pretrained``) or a W&B run's file (``pretrained_wandb``)."""
        return self.pretrained is not None or self.pretrained_wandb is not None


@dataclass(frozen=True)
class CrossResSpec:
    """``run_crossres.py``: train at ``source_res``, test and fine-tune at ``target_res`` (or evaluate one
    checkpoint at ``eval_resolutions``)."""

    source_res: int = 0
    target_res: int = 0
    finetune_epochs: int = 100
    eval_resolutions: tuple[int, ...] = ()


@dataclass(frozen=True)
class ProfileSpec:
    """``run_profiler.py``."""

    n_batches: int = 30
    warmup_batches: int = 5
    directory: str = ""
    data_mode: str = "fake"
    data_shape: int = 0
    mode: str = "bench"
    grow_masks: bool = False


@dataclass(frozen=True)
class RunSpec:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    loss: LossSpec = field(default_factory=LossSpec)
    loop: LoopSpec = field(default_factory=LoopSpec)
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    cross_res: CrossResSpec = field(default_factory=CrossResSpec)
    profile: ProfileSpec = field(default_factory=ProfileSpec)
    # The resolved config (plain values): logged, and stored in checkpoints.
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def with_seed(self, seed: int) -> "RunSpec":
        """The spec with a drawn seed in every place that reads it (data splits, the loop, the stored config)."""
        return dataclasses.replace(self, data=dataclasses.replace(self.data, seed=seed),
                                   runtime=dataclasses.replace(self.runtime, seed=seed),
                                   config={**self.config, "seed": seed})
