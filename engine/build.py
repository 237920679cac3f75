"""Building the parts of a run from its :class:`~engine.specs.RunSpec` - data, model, optimiser, schedule,
regularisers, trainer - in one place, for ``run_experiment.py``, ``run_crossres.py`` and ``run_profiler.py`` alike.

The model is built from the dataset's metadata (which reads no files) before any data is loaded, so a
combination the layers reject fails with one message before anything is touched.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ckconv.nn.grids import parse_horizon, resolve_horizon
from datasets import DataBundle, DatasetMeta, build_data
from models import build_model

from .checkpoint import CheckpointError, CrossResState, fetch_wandb_file, load_checkpoint, state_dict_mismatch
from .errors import ConfigError
from .optim import build_optimizer, build_schedule, describe_optimizer
from .original import ORIGINAL_FORMAT, map_original
from .preemption import StopRequest
from .runtime import Dist
from .specs import RunSpec
from .tasks import get_task
from .trainer import Regularizers, Trainer

# train.compile: False, or a torch.compile backend (True = inductor, the default backend).
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
# torch.compile specialises a function on the shapes it sees; with dynamic shapes a growing kernel is a new
# value of a symbolic size, not a new graph. A guard that still fails (e.g. the spatial -> FFT switch of
# use_fft=auto) recompiles; after this many recompiles of one function, dynamo runs it eagerly instead.
COMPILE_RECOMPILE_LIMIT = 8


# --- data and model ----------------------------------------------------------------------------------
def input_meta(spec: RunSpec, resolution: int | None = None) -> DatasetMeta:
    """Shape, channels and classes of the run's data (at ``resolution``, else the spec's); reads no files."""
    try:
        return spec.data.meta(resolution)
    except ValueError as error:
        raise ConfigError(f"dataset={spec.data.name!r}: {error}") from None


def build_run_data(spec: RunSpec, device: torch.device, dist: Dist, state=None) -> DataBundle:
    """Loaders and metadata; ``state`` is a checkpoint's data state (pMNIST permutation, npCIFAR10 noise)."""
    return build_data(spec.data, state=state, distributed=dist.enabled, pin_memory=device.type == "cuda")


def build_run_model(spec: RunSpec, meta: DatasetMeta, device: torch.device | None = None) -> torch.nn.Module:
    """The run's network for data described by ``meta``; a combination the layers reject (e.g. a TCN on images)
    is a :class:`ConfigError` naming the model and the reason."""
    model_spec = spec.model
    try:
        model = build_model(model_spec, meta.data_dim, meta.in_channels, meta.num_classes,
                            per_step=get_task(meta.task).per_step_outputs)
    except ValueError as error:
        raise ConfigError(f"net.type={model_spec.net.type} with conv.type={model_spec.conv.type} cannot be built "
                          f"for {meta.name} {tuple(meta.input_shape)}: {error}") from None
    return model.to(device) if device is not None else model


def load_weights(model: torch.nn.Module, state_dict: dict, strict: bool, source: str) -> None:
    """Load a checkpoint's weights; weights that do not fit are a :class:`CheckpointError` naming the layers
    (other shapes always; missing and unexpected ones when ``strict``)."""
    mismatch = state_dict_mismatch(model.state_dict(), state_dict, strict=strict)
    if mismatch:
        raise CheckpointError(f"the weights in {source} do not fit the model built from the config: {mismatch}. "
                              f"Use the model keys (net, conv, kernel, mask) the checkpoint was trained with"
                              + ("; pretrained_strict=False skips missing and unexpected layers" if strict else ""))
    try:
        result = model.load_state_dict(state_dict, strict=strict)
    except RuntimeError as error:
        raise CheckpointError(f"the weights in {source} do not fit the model built from the config "
                              f"({str(error).splitlines()[0]}); pass the overrides the checkpoint was trained "
                              f"with, or pretrained_strict=False") from None
    if not strict and (result.missing_keys or result.unexpected_keys):
        print(f"loaded {source} non-strictly: missing {result.missing_keys}, unexpected {result.unexpected_keys}")


def pretrained_file(spec: RunSpec, run_dir: Path | None = None) -> str | None:
    """The checkpoint the run's weights come from: ``pretrained_params.filepath`` (``pretrained=True``), or the
    W&B run's file of ``pretrained_wandb=True`` downloaded into ``<run_dir>/pretrained_wandb/`` (a failed download
    is one :class:`CheckpointError` saying how to get the file by hand); None when the run loads none."""
    runtime = spec.runtime
    if runtime.pretrained is not None:
        return runtime.pretrained
    if runtime.pretrained_wandb is not None:
        wanted = runtime.pretrained_wandb
        return str(fetch_wandb_file(wanted.run_path, wanted.filename, Path(run_dir if run_dir is not None else ".")))
    return None


def with_pretrained_file(spec: RunSpec, path: str) -> RunSpec:
    """``spec`` loading its weights from the local file ``path`` (e.g. a W&B run's file once downloaded)."""
    return dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, pretrained=path, pretrained_wandb=None))


def checkpoint_weights(model: torch.nn.Module, checkpoint: dict, strict: bool, source: str) -> dict:
    """The state dict for ``model`` that ``checkpoint`` holds: its ``model`` entry (this project's formats), or
    an original FlexConv checkpoint's weights mapped onto ``model`` by :mod:`engine.original` - where they do not
    fit (with ``strict``: every tensor used, every parameter filled), one :class:`CheckpointError` lists what
    and why. Conventions that change numbers (a kernel grid other than the file's) are printed."""
    if checkpoint.get("format") != ORIGINAL_FORMAT:
        return checkpoint["model"]
    mapped = map_original(checkpoint["model"], model)
    problems = mapped.problems(strict)
    if problems:
        raise CheckpointError(f"the weights in {source} (a checkpoint of the original FlexConv code) do not fit the "
                              f"model built from the config: {problems}. Use the model keys the checkpoint was "
                              f"trained with (the original command that trained it works as it is)"
                              + ("; pretrained_strict=False loads what fits" if strict else ""))
    for note in mapped.notes:
        print(f"note: {source}: {note}")
    if not strict and mapped.unused:
        print(f"loaded {source} non-strictly: {len(mapped.unused)} entries of the file fit nowhere in the model: "
              f"{', '.join(mapped.unused)}")
    return mapped.state


def load_pretrained(model: torch.nn.Module, spec: RunSpec, run_dir: Path | None = None) -> None:
    """``pretrained=True`` / ``pretrained_wandb=True``: the weights of that checkpoint (this project's or the
    original code's) into ``model``."""
    path = pretrained_file(spec, run_dir)
    strict = spec.runtime.pretrained_strict
    load_weights(model, checkpoint_weights(model, load_checkpoint(path, original=True), strict, path), strict, path)


def describe_model(model: torch.nn.Module, depth: int) -> str:
    """Parameter counts per module down to ``depth`` (stands in for the original's torchinfo summary)."""
    lines = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        if 0 < level <= depth:
            count = sum(p.numel() for p in module.parameters())
            lines.append(f"{'  ' * (level - 1)}{name.rsplit('.', 1)[-1]:<24} {type(module).__name__:<20} {count:>12,}")
    return "\n".join(lines)


# --- fast paths (train.channels_last, train.compile) -------------------------------------------------
def _to_channels_last(module, args):
    return (args[0].contiguous(memory_format=torch.channels_last),) + tuple(args[1:])


def use_channels_last(model: torch.nn.Module) -> None:
    """Channels-last weights, and a forward pre-hook giving the model channels-last inputs (training and
    evaluation alike; hooks are not part of the state dict, so checkpoints are unchanged)."""
    model.to(memory_format=torch.channels_last)
    model.register_forward_pre_hook(_to_channels_last)


def compile_model(model: torch.nn.Module, backend: str) -> torch.nn.Module:
    """``torch.compile`` with dynamic shapes and a bounded number of recompiles (see above)."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = COMPILE_RECOMPILE_LIMIT
    return torch.compile(model, backend=backend, dynamic=True)


# --- loss terms and loop -----------------------------------------------------------------------------
def build_regularizers(spec: RunSpec, meta: DatasetMeta) -> Regularizers:
    """The kernel-norm penalty (``train.weight_decay``) and the anti-aliasing penalty (``kernel.regularize``),
    whose Nyquist budget defaults to the kernel grid of this model and data."""
    anti_aliasing = None
    aa = spec.loss.anti_aliasing
    if aa is not None:
        resolution = aa.res or resolve_horizon(parse_horizon(spec.model.conv.horizon, meta.data_dim), meta.length,
                                               meta.data_dim)
        anti_aliasing = dict(resolution=resolution, factor=aa.factor, target=aa.target, fn=aa.fn, method=aa.method,
                             gauss_stddevs=aa.gauss_stddevs)
    return Regularizers(kernel_norm=spec.loss.kernel_norm, anti_aliasing=anti_aliasing)


def build_trainer(spec: RunSpec, *, raw_model: torch.nn.Module, data: DataBundle, device: torch.device, dist: Dist,
                  logger, checkpoint_dir: Path, step_offset: int = 0, crossres: CrossResState | None = None,
                  stop: StopRequest | None = None) -> Trainer:
    """A Trainer for one training phase: the model (channels-last, wrapped in DDP under torchrun, compiled, as
    configured), a fresh optimiser and schedule sized by the actual loader, the regularisers, all from ``spec``.
    Evaluation and checkpoints use ``raw_model``."""
    if spec.runtime.channels_last and data.meta.data_dim == 2:
        use_channels_last(raw_model)
    model = raw_model
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    if spec.runtime.compile:
        model = compile_model(model, spec.runtime.compile)  # after DDP, as torch recommends; raw_model stays eager
    optimizer = build_optimizer(raw_model, spec.optim)
    steps_per_epoch = len(data.train_loader)
    if spec.loop.limit_train_batches >= 0:
        steps_per_epoch = min(steps_per_epoch, spec.loop.limit_train_batches)
    schedule = build_schedule(optimizer, spec.optim, spec.loop.epochs, steps_per_epoch)
    if dist.is_main:
        print(describe_optimizer(optimizer))
    return Trainer(spec=spec, model=model, raw_model=raw_model, optimizer=optimizer, schedule=schedule, data=data,
                   regularizers=build_regularizers(spec, data.meta), device=device, logger=logger,
                   checkpoint_dir=checkpoint_dir, is_main=dist.is_main, step_offset=step_offset, crossres=crossres,
                   stop=stop)
