"""One run of ``run_experiment.py``: build everything from the config, train (or resume), test, summarise;
or evaluate a checkpoint (``train.do=False pretrained=True pretrained_params.filepath=PATH``).

The run directory gets ``metrics.jsonl``, ``summary.json`` and ``checkpoints/{last,best}.pt``.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ckconv.nn.grids import resolve_horizon
from datasets import DEFAULT_DATA_ROOT, build_data
from models import build_model, count_parameters

from .checkpoint import CheckpointError, load_checkpoint
from .config import ConfigError, config_warnings, resolve_device, validate_config
from .logger import RunLogger
from .optim import build_optimizer, build_schedule, describe_optimizer
from .runtime import Dist, broadcast_from_main, draw_seed, init_distributed, seed_everything
from .trainer import LoopSettings, NonFiniteLossError, Regularizers, Trainer, evaluate, layer_statistics

# Keys that describe how to run, not what was trained: taken from the current command, never from a
# stored checkpoint config (a checkpoint made on a GPU must evaluate on a laptop).
RUNTIME_KEYS = ("device", "train.do", "train.resume", "pretrained", "pretrained_params", "pretrained_strict",
                "wandb", "debug", "dataset_params.root", "dataset_params.num_workers", "comment")


# --- config helpers -------------------------------------------------------------------------------------
def override_keys(overrides: list[str]) -> list[str]:
    """Config keys set on the command line (``key=value``; group selections and hydra.* skipped)."""
    keys = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if "=" in item and key and not key.startswith("hydra") and key != "experiment" and "/" not in key:
            keys.append(key)
    return keys


def config_from_checkpoint(stored: dict, current: DictConfig, overrides: list[str]) -> DictConfig:
    """The checkpoint's config, with the command line's explicit overrides and the runtime keys on top."""
    cfg = OmegaConf.merge(current, stored)
    for key in list(RUNTIME_KEYS) + override_keys(overrides):
        value = OmegaConf.select(current, key)
        if value is not None or OmegaConf.select(cfg, key) is not None:
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def data_root(cfg) -> Path:
    return Path(cfg.dataset_params.root) if cfg.dataset_params.root else DEFAULT_DATA_ROOT


def image_resolution(cfg) -> int | None:
    """``cross_res.resize`` ("h,w", only h is used as in the original) -> square resolution, else None."""
    resize = str(cfg.cross_res.resize or "").strip()
    return int(resize.split(",")[0]) if resize else None


def build_data_from_cfg(cfg, device: torch.device, dist: Dist, state=None, resolution=None):
    params = cfg.dataset_params
    workers = int(params.num_workers)
    return build_data(
        cfg.dataset, root=data_root(cfg), batch_size=int(cfg.train.batch_size), augment=str(cfg.train.augment),
        protocol=cfg.protocol, val_fraction=float(params.val_fraction), seed=int(cfg.seed),
        num_workers=None if workers < 0 else workers, pin_memory=device.type == "cuda",
        permuted=bool(params.permuted), noise_padded=bool(params.noise_padded),
        resolution=resolution if resolution is not None else image_resolution(cfg),
        interpolation=cfg.cross_res.interpolation, state=state, distributed=dist.enabled,
        synthetic=bool(params.synthetic),
    )


def kernel_grid_size(cfg, meta) -> int:
    """Taps per dimension of the kernel grid for this config and data (for the anti-aliasing Nyquist)."""
    horizon = cfg.conv.horizon
    if isinstance(horizon, str) and horizon not in ("same", "full"):
        horizon = int(horizon)
    return resolve_horizon(horizon, meta.length, meta.data_dim)


def build_regularizers(cfg, meta) -> Regularizers:
    kernel_norm = float(cfg.train.weight_decay)
    anti_aliasing = None
    if cfg.kernel.regularize:
        p = cfg.kernel.regularize_params
        resolution = int(p.res) if p.res else kernel_grid_size(cfg, meta)
        anti_aliasing = dict(resolution=resolution, factor=float(p.factor), target=p.target, fn=p.fn,
                             method=p.method, gauss_stddevs=float(p.gauss_stddevs))
    return Regularizers(kernel_norm=kernel_norm, anti_aliasing=anti_aliasing)


def describe_model(model: torch.nn.Module, depth: int) -> str:
    """Parameter counts per module down to ``depth`` (stands in for the original's torchinfo summary)."""
    lines = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        if 0 < level <= depth:
            count = sum(p.numel() for p in module.parameters())
            lines.append(f"{'  ' * (level - 1)}{name.rsplit('.', 1)[-1]:<24} {type(module).__name__:<20} {count:>12,}")
    return "\n".join(lines)


def load_weights(model: torch.nn.Module, state_dict: dict, strict: bool, source: str) -> None:
    try:
        result = model.load_state_dict(state_dict, strict=strict)
    except RuntimeError as error:
        raise CheckpointError(f"the weights in {source} do not fit the model built from the config "
                              f"({str(error).splitlines()[0]}); pass the overrides the checkpoint was trained "
                              f"with, or pretrained_strict=False") from None
    if not strict and (result.missing_keys or result.unexpected_keys):
        print(f"loaded {source} non-strictly: missing {result.missing_keys}, unexpected {result.unexpected_keys}")


# --- entry points ----------------------------------------------------------------------------------------
def run(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict:
    """Train and test (or evaluate a checkpoint when ``train.do=False``). Returns the summary."""
    validate_config(cfg)
    for warning in config_warnings(cfg):
        print(f"note: {warning}")
    device = resolve_device(cfg.device)
    dist, device = init_distributed(device)
    # Under torchrun every process runs Hydra; the run directory is rank 0's (a checkpoint to resume is
    # looked up there, and run_experiment.py gives the other ranks no directory of their own).
    run_dir = broadcast_from_main(str(run_dir))
    if not cfg.train.do:
        return evaluate_checkpoint(cfg, Path(run_dir), overrides, device, dist)
    return train(cfg, Path(run_dir), overrides, device, dist)


def resume_checkpoint_path(cfg, run_dir: Path) -> Path | None:
    resume = cfg.train.resume
    if resume in (False, None, "false", "False", ""):
        return None
    if resume in (True, "true", "True"):
        path = run_dir / "checkpoints" / "last.pt"
        if not path.exists():
            print(f"train.resume=true: no checkpoint at {path} yet, starting a new run")
            return None
        return path
    path = Path(str(resume))
    if path.is_dir():
        path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"train.resume={resume!r}: no checkpoint at {path}")
    return path


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], device: torch.device, dist: Dist) -> dict:
    started = time.time()
    checkpoint = None
    resume_path = resume_checkpoint_path(cfg, run_dir)
    if resume_path is not None:
        checkpoint = load_checkpoint(resume_path)
        cfg = config_from_checkpoint(checkpoint["config"], cfg, overrides)
        validate_config(cfg)
        if resume_path.parent.name == "checkpoints":
            run_dir = resume_path.parent.parent  # keep writing into the interrupted run's directory
        print(f"resuming from {resume_path} (epoch {checkpoint['epoch']}) in {run_dir}")
    # seed=-1 draws one: rank 0's, so that all ranks split, permute and shard the data alike.
    seed = int(checkpoint["config"]["seed"]) if checkpoint else broadcast_from_main(draw_seed(int(cfg.seed)))
    OmegaConf.update(cfg, "seed", seed, merge=False)
    seed_everything(seed, bool(cfg.deterministic))

    data = build_data_from_cfg(cfg, device, dist, state=checkpoint["data_state"] if checkpoint else None)
    meta = data.meta
    model = build_model(cfg, meta.data_dim, meta.in_channels, meta.num_classes).to(device)
    no_params = count_parameters(model)
    if dist.is_main:
        print(f"model {cfg.net.type} / {cfg.conv.type} on {meta.name} {tuple(meta.input_shape)}: "
              f"{no_params:,} trainable parameters; device {device}")
        if len(cfg.summary) > 1:
            print(describe_model(model, int(cfg.summary_depth)))
    if cfg.pretrained and checkpoint is None:
        source = cfg.pretrained_params.filepath
        load_weights(model, load_checkpoint(source)["model"], bool(cfg.pretrained_strict), source)
    raw_model = model
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    optimizer = build_optimizer(raw_model, cfg.train)
    steps_per_epoch = len(data.train_loader)
    if cfg.train.limit_train_batches >= 0:
        steps_per_epoch = min(steps_per_epoch, int(cfg.train.limit_train_batches))
    schedule = build_schedule(optimizer, cfg.train, steps_per_epoch)
    if dist.is_main:
        print(describe_optimizer(optimizer))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    logger = RunLogger(run_dir, enabled=dist.is_main, wandb_cfg=cfg.wandb, debug=bool(cfg.debug), config=resolved,
                       resume_id=checkpoint.get("wandb_id") if checkpoint else None)
    settings = LoopSettings(
        epochs=int(cfg.train.epochs), seed=seed, dropout_in=float(cfg.net.dropout_in),
        grad_clip=float(cfg.train.grad_clip), mixed_precision=bool(cfg.train.mixed_precision),
        early_stop_patience=int(cfg.train.early_stop_patience),
        limit_train_batches=int(cfg.train.limit_train_batches), limit_eval_batches=int(cfg.train.limit_eval_batches),
        report_top5=bool(cfg.train.report_top5_acc), progress=dist.is_main)
    trainer = Trainer(model=model, raw_model=raw_model, optimizer=optimizer, schedule=schedule, data=data,
                      regularizers=build_regularizers(cfg, meta), settings=settings, device=device,
                      logger=logger, checkpoint_dir=run_dir / "checkpoints", config=resolved, is_main=dist.is_main)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        logger.truncate_metrics(trainer.epoch)
        logger.summary.pop("error", None)  # the reason an earlier attempt stopped no longer holds
    logger.update_summary(no_params=no_params, dataset=meta.name, protocol=cfg.protocol, seed=seed,
                          net_type=cfg.net.type, conv_type=cfg.conv.type, status="running", run_dir=str(run_dir))
    if cfg.test.before_train and checkpoint is None:
        before = evaluate(raw_model, data.test_loader, device, limit_batches=settings.limit_eval_batches,
                          mixed_precision=settings.mixed_precision, progress=settings.progress, desc="test")
        logger.update_summary(test_accuracy_before_train=before["accuracy"])
        if dist.is_main:
            print(f"test accuracy before training: {before['accuracy']:.4f}")
    try:
        status = trainer.fit()
    except NonFiniteLossError as error:
        logger.update_summary(status="diverged", error=str(error))
        logger.finish()
        raise
    summary = finish_training(trainer, raw_model, data, device, settings, logger, run_dir)
    logger.update_summary(status=status, wall_time_s=trainer.elapsed_s, process_time_s=time.time() - started)
    logger.finish()
    return {**summary, **logger.summary}


def finish_training(trainer: Trainer, raw_model, data, device, settings: LoopSettings, logger, run_dir: Path) -> dict:
    """Reload the best-validation weights and report their test accuracy (the clean protocol's number)."""
    best_path = run_dir / "checkpoints" / "best.pt"
    if best_path.exists():
        raw_model.load_state_dict(load_checkpoint(best_path)["model"])
    test = evaluate(raw_model, data.test_loader, device, limit_batches=settings.limit_eval_batches,
                    top5=settings.report_top5, mixed_precision=settings.mixed_precision, progress=settings.progress)
    final = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], **layer_statistics(raw_model)}
    if "accuracy_top5" in test:
        final["test_accuracy_top5"] = test["accuracy_top5"]
    logger.update_summary(**final)
    if settings.progress:
        print(f"best epoch {trainer.best.epoch}: val acc {trainer.best.val_accuracy:.4f}, "
              f"test acc {test['accuracy']:.4f} (best test acc over epochs {trainer.best.best_test_accuracy:.4f})")
    return final


def evaluate_checkpoint(cfg: DictConfig, run_dir: Path, overrides: list[str], device: torch.device, dist: Dist) -> dict:
    """``train.do=False``: rebuild the model from the checkpoint's config, load strictly, test."""
    path = cfg.pretrained_params.filepath
    if not cfg.pretrained or not path:
        raise ConfigError("train.do=False evaluates a checkpoint: pass pretrained=True "
                          "pretrained_params.filepath=PATH (e.g. outputs/<run>/checkpoints/best.pt)")
    checkpoint = load_checkpoint(path)
    cfg = config_from_checkpoint(checkpoint["config"], cfg, overrides)
    validate_config(cfg)
    seed_everything(int(cfg.seed))
    data = build_data_from_cfg(cfg, device, dist, state=checkpoint.get("data_state") or None)
    model = build_model(cfg, data.meta.data_dim, data.meta.in_channels, data.meta.num_classes).to(device)
    load_weights(model, checkpoint["model"], bool(cfg.pretrained_strict), path)
    test = evaluate(model, data.test_loader, device, top5=bool(cfg.train.report_top5_acc), progress=dist.is_main,
                    limit_batches=int(cfg.train.limit_eval_batches), desc="test")
    logger = RunLogger(run_dir, enabled=dist.is_main, wandb_cfg=cfg.wandb, debug=bool(cfg.debug),
                       config=OmegaConf.to_container(cfg, resolve=True))
    summary = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "no_params": count_parameters(model),
               "checkpoint": str(path), "checkpoint_epoch": checkpoint.get("epoch"), "dataset": data.meta.name,
               "status": "evaluated", **layer_statistics(model)}
    if "accuracy_top5" in test:
        summary["test_accuracy_top5"] = test["accuracy_top5"]
    logger.update_summary(**summary)
    logger.finish()
    if dist.is_main:
        print(f"test accuracy of {path}: {test['accuracy']:.4f} ({count_parameters(model):,} parameters)")
    return summary
