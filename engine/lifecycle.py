"""The run lifecycle, once, for training, checkpoint evaluation, cross-resolution and the profiler.

    with start_run(reader.spec, run_dir) as run:       # device, torchrun, rank 0's run directory, signals
        spec = run.seed(spec)                          # seed=-1 drawn once (rank 0's), RNGs seeded
        logger = run.logger(spec)                      # metrics.jsonl, summary.json, W&B
        model = run.model(spec, meta)                  # built, announced, summary table
        test = evaluate_with(spec, model, loader, run.device, progress=run.is_main, desc="test")
        run.close(spec, model, logger, meta)           # figures, W&B closed, the summary line

A run is *finished* (:func:`is_finished`) when its ``summary.json`` says it completed or stopped early, and,
for a cross-resolution run, that its last phase is done; ``train.resume=auto``, ``experiments/reproduce.py``
and ``experiments/make_tables.py`` all ask this one function.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Protocol

import torch

from datasets import DatasetMeta
from models import count_parameters

from .build import build_run_model, describe_model
from .checkpoint import CheckpointError, load_checkpoint
from .logger import RunLogger, summary_line
from .preemption import StopRequest, stop_on_signals
from .resample import at_test_rate
from .runtime import Dist, broadcast_from_main, draw_seed, init_distributed, resolve_device, seed_everything
from .specs import RunSpec
from .trainer import Trainer, draw_figures, evaluate_with, layer_statistics, report, result_fields

FINISHED_STATUSES = ("completed", "early_stopped")


class SpecSource(Protocol):
    """What the entry points hand to the engine (``config.SpecReader``): the command's spec, and the spec of a
    checkpoint's stored config (and stored model spec) with the command's explicit and runtime keys on top."""

    spec: RunSpec

    def with_stored(self, config: Mapping, model_spec: Optional[Mapping] = None) -> RunSpec: ...


# --- finished runs ---------------------------------------------------------------------------------------
def read_summary(run_dir: Path) -> Optional[dict]:
    """``<run_dir>/summary.json``, or None when there is none or it is unreadable (half-written by a killed
    process)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def is_finished(summary: Optional[Mapping]) -> bool:
    """A run that completed or stopped early (for cross-resolution runs: in its last phase)."""
    return bool(summary) and summary.get("status") in FINISHED_STATUSES and summary.get("phase", "done") == "done"


def finished_summary(run_dir: Path) -> Optional[dict]:
    """The run directory's summary if the run is finished (``train.resume=auto`` does not retrain it)."""
    summary = read_summary(run_dir)
    return summary if is_finished(summary) else None


def resume_path(resume, run_dir: Path) -> Optional[Path]:
    """The checkpoint ``train.resume`` names: this run directory's ``last.pt`` for true/"auto" (None, with a
    note, when there is none yet), or a checkpoint / run directory path (an error when it holds none)."""
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


# --- one process's part of a run -------------------------------------------------------------------------
@dataclass
class Run:
    """Where this process runs: its device, its place under torchrun, the run directory (rank 0's) and the stop
    request of SIGTERM / SIGUSR1 / SIGUSR2."""

    device: torch.device
    dist: Dist
    run_dir: Path
    stop: Optional[StopRequest] = None

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def say(self, text: str) -> None:
        """Print on rank 0 only."""
        if self.is_main:
            print(text)

    def seed(self, spec: RunSpec, fixed_seed: Optional[int] = None) -> RunSpec:
        """The spec with its seed fixed - ``fixed_seed`` where given (a resumed run keeps the one it drew), else the
        spec's, where ``seed=-1`` draws one (rank 0's, so that all ranks split, permute and shard the data alike) -
        and every RNG seeded from it."""
        seed = int(fixed_seed) if fixed_seed is not None else broadcast_from_main(draw_seed(spec.runtime.seed))
        seed_everything(seed, spec.runtime.deterministic)
        return spec.with_seed(seed)

    def logger(self, spec: RunSpec, run_dir: Optional[Path] = None, resume_id: Optional[str] = None) -> RunLogger:
        """The run's logger (local files on rank 0, W&B as configured), in ``run_dir`` (default: the run's)."""
        return RunLogger(run_dir or self.run_dir, enabled=self.is_main, wandb=spec.runtime.wandb,
                         config=dict(spec.config), resume_id=resume_id)

    def model(self, spec: RunSpec, meta: DatasetMeta, what: str = "") -> torch.nn.Module:
        """The spec's model on this device, announced with its parameter count (and the per-module table of
        ``summary``) on rank 0."""
        model = build_run_model(spec, meta, self.device)
        model_spec = spec.model
        self.say(f"{what or 'model'} {model_spec.net.type} / {model_spec.conv.type} on {meta.name} "
                 f"{tuple(meta.input_shape)}: {count_parameters(model):,} trainable parameters; device {self.device}")
        if spec.runtime.summary_depth is not None:
            self.say(describe_model(model, spec.runtime.summary_depth))
        return model

    def close(self, spec: RunSpec, model: torch.nn.Module, logger: RunLogger, meta: DatasetMeta,
              message: Optional[str] = None, run_dir: Optional[Path] = None) -> None:
        """The end of every run: the figures of ``model`` (unless ``train.plot_every=-1``), W&B closed, and on rank
        0 the last lines of the log: ``message``, then the summary line."""
        if self.is_main and spec.loop.plot_every >= 0:
            draw_figures(model, run_dir or self.run_dir, logger, meta)
        logger.finish()
        if self.is_main:
            if message:
                print(message)
            report(summary_line(logger.summary, logger.summary_path))


@contextlib.contextmanager
def start_run(spec: RunSpec, run_dir: Path, *, signals: bool = True) -> Iterator[Run]:
    """Device (``device=auto`` picks CUDA when present), the process group under torchrun, rank 0's run
    directory on every rank (only rank 0's Hydra made one), and - with ``signals`` - the stop request.

    A process group started here is closed when the run ends normally, after every rank has arrived: rank 0 may
    still be writing figures and summaries when the others are done, and a rank that exits with the group open
    can abort in the group's threads."""
    group_was_open = torch.distributed.is_available() and torch.distributed.is_initialized()
    device = resolve_device(spec.runtime.device)
    dist, device = init_distributed(device)
    run_dir = Path(broadcast_from_main(str(run_dir)))
    with stop_on_signals() if signals else contextlib.nullcontext() as stop:
        yield Run(device, dist, run_dir, stop)
    if dist.enabled and not group_was_open:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


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


def finish_training(trainer: Trainer, raw_model, data, device: torch.device, logger, run_dir: Path) -> dict:
    """Reload the best-validation weights and report their test accuracy (the clean protocol's number)."""
    best_path = run_dir / "checkpoints" / "best.pt"
    if best_path.exists():
        raw_model.load_state_dict(load_checkpoint(best_path)["model"])
    with at_test_rate(raw_model, trainer.spec.data):  # sr_test: the kernels resampled for the test
        test = evaluate_with(trainer.spec, raw_model, data.test_loader, device, progress=trainer.is_main, desc="test")
    final = {**result_fields(test), **layer_statistics(raw_model)}
    logger.update_summary(**final)
    if trainer.is_main:
        best, label = trainer.best, trainer.task.label
        best_test = best.best_test_metric  # protocol=paper only
        # No validation value when no epoch ran here (a converted checkpoint of the original code, resumed).
        val = "-" if best.val_metric is None else f"{best.val_metric:.4f}"
        print(f"best epoch {best.epoch}: val {label} {val}, "
              f"test {label} {test[trainer.task.metric]:.4f}"
              + (f" (best test {label} over epochs {best_test:.4f})" if best_test is not None else ""))
    return final
