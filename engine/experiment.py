"""One run of ``run_experiment.py``: build everything from the config, train (or resume), test, summarise;
or evaluate a checkpoint (``train.do=False pretrained=True pretrained_params.filepath=PATH``).

The run directory gets ``metrics.jsonl``, ``summary.json`` and ``checkpoints/{last,best}.pt``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from config import ConfigError, config_warnings, validate_config
from config.choices import parse_resume
from models import count_parameters

from .build import (build_data_from_cfg, build_model_from_cfg, build_trainer, config_from_checkpoint,
                    describe_model, input_meta, load_weights)
from .checkpoint import CheckpointError, load_checkpoint
from .logger import RunLogger, summary_line
from .preemption import StopRequest, stop_on_signals
from .runtime import Dist, broadcast_from_main, draw_seed, init_distributed, resolve_device, seed_everything
from .trainer import LoopSettings, NonFiniteLossError, Trainer, draw_figures, evaluate, layer_statistics, report


# --- entry points ----------------------------------------------------------------------------------------
def run(cfg: DictConfig, run_dir: Path, explicit: list[str] = ()) -> dict:
    """Train and test (or evaluate a checkpoint when ``train.do=False``). Returns the summary.

    ``explicit``: the keys set on the command line (``config.explicit_keys``); they win over the config
    stored in a checkpoint that is resumed or evaluated.
    """
    validate_config(cfg)
    for warning in config_warnings(cfg):
        print(f"note: {warning}")
    device = resolve_device(cfg.device)
    dist, device = init_distributed(device)
    # Under torchrun every process runs Hydra; the run directory is rank 0's (a checkpoint to resume is
    # looked up there, and run_experiment.py gives the other ranks no directory of their own).
    run_dir = broadcast_from_main(str(run_dir))
    if not cfg.train.do:
        return evaluate_checkpoint(cfg, Path(run_dir), list(explicit), device, dist)
    with stop_on_signals() as stop:
        return train(cfg, Path(run_dir), list(explicit), device, dist, stop)


FINISHED = ("completed", "early_stopped")


def finished_summary(run_dir: Path) -> dict | None:
    """The run directory's summary if it says the run is finished (``train.resume=auto`` skips it)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        return None  # half-written by a killed process: not finished
    return summary if summary.get("status") in FINISHED else None


def resume_checkpoint_path(cfg, run_dir: Path) -> Path | None:
    resume = parse_resume(cfg.train.resume)
    if resume is False:
        return None
    if resume in (True, "auto"):
        path = run_dir / "checkpoints" / "last.pt"
        if not path.exists():
            print(f"train.resume={resume if resume == 'auto' else 'true'}: no checkpoint at {path} yet, "
                  "starting a new run")
            return None
        return path
    path = Path(str(resume))
    if path.is_dir():
        path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"train.resume={resume!r}: no checkpoint at {path}")
    return path


def train(cfg: DictConfig, run_dir: Path, explicit: list[str], device: torch.device, dist: Dist,
          stop: StopRequest | None = None) -> dict:
    started = time.time()
    if parse_resume(cfg.train.resume) == "auto":
        done = broadcast_from_main(finished_summary(run_dir))
        if done is not None:
            print(f"train.resume=auto: {run_dir} is already finished ({done['status']}, "
                  f"{done.get('epochs_completed')} epochs); not retraining it")
            return done
    checkpoint = None
    resume_path = resume_checkpoint_path(cfg, run_dir)
    if resume_path is not None:
        checkpoint = load_checkpoint(resume_path)
        cfg = config_from_checkpoint(checkpoint["config"], cfg, explicit)
        validate_config(cfg)
        if resume_path.parent.name == "checkpoints":
            run_dir = resume_path.parent.parent  # keep writing into the interrupted run's directory
        print(f"resuming from {resume_path} (epoch {checkpoint['epoch']}) in {run_dir}")
    # seed=-1 draws one: rank 0's, so that all ranks split, permute and shard the data alike.
    seed = int(checkpoint["config"]["seed"]) if checkpoint else broadcast_from_main(draw_seed(int(cfg.seed)))
    OmegaConf.update(cfg, "seed", seed, merge=False)
    seed_everything(seed, bool(cfg.deterministic))

    # The model first: it needs only the data's shape, so a model the layers reject fails before any data
    # is read.
    meta = input_meta(cfg)
    model = build_model_from_cfg(cfg, meta, device)
    no_params = count_parameters(model)
    if dist.is_main:
        print(f"model {cfg.net.type} / {cfg.conv.type} on {meta.name} {tuple(meta.input_shape)}: "
              f"{no_params:,} trainable parameters; device {device}")
        if len(cfg.summary) > 1:
            print(describe_model(model, int(cfg.summary_depth)))
    if cfg.pretrained and checkpoint is None:
        source = cfg.pretrained_params.filepath
        load_weights(model, load_checkpoint(source)["model"], bool(cfg.pretrained_strict), source)
    data = build_data_from_cfg(cfg, device, dist, state=checkpoint["data_state"] if checkpoint else None)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    logger = RunLogger(run_dir, enabled=dist.is_main, wandb_cfg=cfg.wandb, debug=bool(cfg.debug), config=resolved,
                       resume_id=checkpoint.get("wandb_id") if checkpoint else None)
    trainer = build_trainer(cfg, raw_model=model, data=data, device=device, dist=dist, logger=logger,
                            checkpoint_dir=run_dir / "checkpoints", seed=seed, stop=stop)
    settings = trainer.settings
    if checkpoint is not None:
        trainer.restore(checkpoint)
        logger.truncate_metrics(trainer.epoch)
        logger.summary.pop("error", None)  # the reason an earlier attempt stopped no longer holds
    logger.update_summary(no_params=no_params, dataset=meta.name, protocol=cfg.protocol, seed=seed,
                          net_type=cfg.net.type, conv_type=cfg.conv.type, status="running", run_dir=str(run_dir))
    if cfg.test.before_train and checkpoint is None:
        before = evaluate(model, data.test_loader, device, limit_batches=settings.limit_eval_batches,
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
    if status == "preempted":
        stop_after_signal(trainer, logger, run_dir / "checkpoints" / "last.pt")
    summary = finish_training(trainer, model, data, device, settings, logger, run_dir)
    logger.update_summary(status=status, wall_time_s=trainer.elapsed_s, process_time_s=time.time() - started)
    close_run(cfg, dist, model, run_dir, logger, meta)
    return {**summary, **logger.summary}


def close_run(cfg, dist: Dist, model, run_dir: Path, logger: RunLogger, meta, message: str | None = None) -> None:
    """The end of every entry point's run: the figures of ``model`` (unless ``train.plot_every=-1``), W&B
    closed, and on rank 0 the last lines of the log: ``message``, then the summary line."""
    if dist.is_main and cfg.train.plot_every >= 0:
        draw_figures(model, run_dir, logger, meta)
    logger.finish()
    if dist.is_main:
        if message:
            print(message)
        report(summary_line(logger.summary, logger.summary_path))


def stop_after_signal(trainer: Trainer, logger, last: Path) -> None:
    """The run was asked to stop (SIGTERM / SIGUSR1 / SIGUSR2): say where it stands, then hand the signal on."""
    logger.update_summary(status="preempted", epochs_completed=trainer.epoch, wall_time_s=trainer.elapsed_s)
    logger.finish()
    if trainer.is_main:
        where = (f"{last} holds epoch {trainer.epoch}" if trainer.epoch else "no epoch was completed, so a resumed "
                 "run starts from the beginning")
        print(f"stopped by {trainer.stop.name} after {trainer.epoch} completed epoch(s); {where}. Run the same "
              f"command with train.resume=auto to continue.", flush=True)
    trainer.stop.hand_over()


def finish_training(trainer: Trainer, raw_model, data, device, settings: LoopSettings, logger, run_dir: Path) -> dict:
    """Reload the best-validation weights and report their test accuracy (the clean protocol's number)."""
    best_path = run_dir / "checkpoints" / "best.pt"
    if best_path.exists():
        raw_model.load_state_dict(load_checkpoint(best_path)["model"])
    test = evaluate(raw_model, data.test_loader, device, limit_batches=settings.limit_eval_batches,
                    top5=settings.report_top5, mixed_precision=settings.mixed_precision, progress=settings.progress,
                    desc="test")
    final = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], **layer_statistics(raw_model)}
    if "accuracy_top5" in test:
        final["test_accuracy_top5"] = test["accuracy_top5"]
    logger.update_summary(**final)
    if settings.progress:
        best_test = trainer.best.best_test_accuracy  # protocol=paper only
        print(f"best epoch {trainer.best.epoch}: val acc {trainer.best.val_accuracy:.4f}, "
              f"test acc {test['accuracy']:.4f}"
              + (f" (best test acc over epochs {best_test:.4f})" if best_test is not None else ""))
    return final


def evaluate_checkpoint(cfg: DictConfig, run_dir: Path, explicit: list[str], device: torch.device, dist: Dist) -> dict:
    """``train.do=False``: rebuild the model from the checkpoint's config, load strictly, test."""
    path = cfg.pretrained_params.filepath
    if not cfg.pretrained or not path:
        raise ConfigError("train.do=False evaluates a checkpoint: pass pretrained=True "
                          "pretrained_params.filepath=PATH (e.g. outputs/<run>/checkpoints/best.pt)")
    checkpoint = load_checkpoint(path)
    cfg = config_from_checkpoint(checkpoint["config"], cfg, explicit)
    validate_config(cfg)
    seed_everything(int(cfg.seed))
    model = build_model_from_cfg(cfg, input_meta(cfg), device)
    load_weights(model, checkpoint["model"], bool(cfg.pretrained_strict), path)
    data = build_data_from_cfg(cfg, device, dist, state=checkpoint.get("data_state") or None)
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
    close_run(cfg, dist, model, run_dir, logger, data.meta,
              f"test accuracy of {path}: {test['accuracy']:.4f} ({count_parameters(model):,} parameters)")
    return summary
