"""Building a run from its config - data, model, optimiser, schedule, regularisers, loop settings - in one
place, for ``run_experiment.py``, ``run_crossres.py`` and ``run_profiler.py`` alike.

The model is built from the dataset's metadata (which reads no files) before any data is loaded, so a
configuration the layers reject fails with one message before anything is touched.
"""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ckconv.nn.grids import parse_horizon, resolve_horizon
from config import ConfigError
from config.choices import parse_compile, parse_resize
from datasets import DEFAULT_DATA_ROOT, DatasetMeta, build_data, dataset_meta
from models import build_model

from .checkpoint import CheckpointError, CrossResState, state_dict_mismatch
from .optim import build_optimizer, build_schedule, describe_optimizer
from .preemption import StopRequest
from .runtime import Dist
from .trainer import LoopSettings, Regularizers, Trainer

# Keys that describe how to run, not what was trained: taken from the current command, never from a
# stored checkpoint config (a checkpoint made on a GPU must evaluate on a laptop).
RUNTIME_KEYS = ("device", "train.do", "train.resume", "pretrained", "pretrained_params", "pretrained_strict",
                "wandb", "debug", "dataset_params.root", "dataset_params.num_workers", "comment")


# --- data --------------------------------------------------------------------------------------------
def data_root(cfg) -> Path:
    return Path(cfg.dataset_params.root) if cfg.dataset_params.root else DEFAULT_DATA_ROOT


def input_meta(cfg, resolution: int | None = None) -> DatasetMeta:
    """Shape, channels and classes of the configured data (at ``resolution``, else ``cross_res.resize``)."""
    params = cfg.dataset_params
    try:
        return dataset_meta(cfg.dataset, permuted=bool(params.permuted), noise_padded=bool(params.noise_padded),
                            resolution=resolution if resolution is not None else parse_resize(cfg.cross_res.resize))
    except ValueError as error:
        raise ConfigError(f"dataset={cfg.dataset!r}: {error}") from None


def build_data_from_cfg(cfg, device: torch.device, dist: Dist, state=None, resolution: int | None = None):
    """Loaders and metadata; ``state`` is a checkpoint's data state (pMNIST permutation, npCIFAR10 noise)."""
    params = cfg.dataset_params
    workers = int(params.num_workers)
    return build_data(
        cfg.dataset, root=data_root(cfg), batch_size=int(cfg.train.batch_size), augment=str(cfg.train.augment),
        protocol=cfg.protocol, val_fraction=float(params.val_fraction), seed=int(cfg.seed),
        num_workers=None if workers < 0 else workers, pin_memory=device.type == "cuda",
        permuted=bool(params.permuted), noise_padded=bool(params.noise_padded),
        resolution=resolution if resolution is not None else parse_resize(cfg.cross_res.resize),
        interpolation=cfg.cross_res.interpolation, state=state, distributed=dist.enabled,
        synthetic=bool(params.synthetic),
    )


# --- model -------------------------------------------------------------------------------------------
def build_model_from_cfg(cfg, meta: DatasetMeta, device: torch.device | None = None) -> torch.nn.Module:
    """The configured network for data described by ``meta``; a combination the layers reject (e.g. a TCN
    on images) is a :class:`ConfigError` naming the model and the reason."""
    try:
        model = build_model(cfg, meta.data_dim, meta.in_channels, meta.num_classes)
    except ValueError as error:
        raise ConfigError(f"net.type={cfg.net.type} with conv.type={cfg.conv.type} cannot be built for "
                          f"{meta.name} {tuple(meta.input_shape)}: {error}") from None
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
# torch.compile specialises a function on the shapes it sees; with dynamic shapes a growing kernel is a new
# value of a symbolic size, not a new graph. A guard that still fails (e.g. the spatial -> FFT switch of
# use_fft=auto) recompiles; after this many recompiles of one function, dynamo runs it eagerly instead.
COMPILE_RECOMPILE_LIMIT = 8


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
def build_regularizers(cfg, meta: DatasetMeta) -> Regularizers:
    """The kernel-norm penalty (``train.weight_decay``) and the anti-aliasing penalty (``kernel.regularize``),
    whose Nyquist budget defaults to the kernel grid of this config and data."""
    anti_aliasing = None
    if cfg.kernel.regularize:
        p = cfg.kernel.regularize_params
        resolution = int(p.res) if p.res else resolve_horizon(parse_horizon(cfg.conv.horizon, meta.data_dim), meta.length,
                                                              meta.data_dim)
        anti_aliasing = dict(resolution=resolution, factor=float(p.factor), target=p.target, fn=p.fn,
                             method=p.method, gauss_stddevs=float(p.gauss_stddevs))
    return Regularizers(kernel_norm=float(cfg.train.weight_decay), anti_aliasing=anti_aliasing)


def loop_settings(cfg, seed: int, progress: bool) -> LoopSettings:
    train = cfg.train
    return LoopSettings(
        epochs=int(train.epochs), seed=seed, dropout_in=float(cfg.net.dropout_in), grad_clip=float(train.grad_clip),
        mixed_precision=bool(train.mixed_precision), early_stop_patience=int(train.early_stop_patience),
        limit_train_batches=int(train.limit_train_batches), limit_eval_batches=int(train.limit_eval_batches),
        report_top5=bool(train.report_top5_acc), progress=progress, log_every=int(train.log_every),
        plot_every=int(train.plot_every))


def build_trainer(cfg: DictConfig, *, raw_model: torch.nn.Module, data, device: torch.device, dist: Dist, logger,
                  checkpoint_dir: Path, seed: int, step_offset: int = 0,
                  crossres: CrossResState | None = None, stop: StopRequest | None = None) -> Trainer:
    """A Trainer for one training phase: the model (channels-last, wrapped in DDP under torchrun, compiled, as
    configured), a fresh optimiser and schedule sized by the actual loader, the regularisers and the loop
    settings, all from ``cfg``. Evaluation and checkpoints use ``raw_model``."""
    if cfg.train.channels_last and data.meta.data_dim == 2:
        use_channels_last(raw_model)
    model = raw_model
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    backend = parse_compile(cfg.train.compile)
    if backend:
        model = compile_model(model, backend)  # after DDP, as torch recommends; raw_model stays eager
    optimizer = build_optimizer(raw_model, cfg.train)
    steps_per_epoch = len(data.train_loader)
    if cfg.train.limit_train_batches >= 0:
        steps_per_epoch = min(steps_per_epoch, int(cfg.train.limit_train_batches))
    schedule = build_schedule(optimizer, cfg.train, steps_per_epoch)
    if dist.is_main:
        print(describe_optimizer(optimizer))
    return Trainer(model=model, raw_model=raw_model, optimizer=optimizer, schedule=schedule, data=data,
                   regularizers=build_regularizers(cfg, data.meta), settings=loop_settings(cfg, seed, dist.is_main),
                   device=device, logger=logger, checkpoint_dir=checkpoint_dir,
                   config=OmegaConf.to_container(cfg, resolve=True), is_main=dist.is_main, step_offset=step_offset,
                   crossres=crossres, stop=stop)


# --- checkpoints -------------------------------------------------------------------------------------
def config_from_checkpoint(stored: dict, current: DictConfig, explicit: list[str]) -> DictConfig:
    """The checkpoint's config, with the keys set explicitly on this command line (``explicit``, from
    ``config.explicit_keys``) and the runtime keys taken from the current config."""
    cfg = OmegaConf.merge(current, stored)
    for key in list(RUNTIME_KEYS) + list(explicit):
        value = OmegaConf.select(current, key)
        if value is not None or OmegaConf.select(cfg, key) is not None:
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg
