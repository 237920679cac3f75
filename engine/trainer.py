"""The training loop: one epoch of training, evaluation, and the epoch loop with checkpoints.

nanoGPT-style: plain functions over plain objects. ``Trainer.fit`` runs epochs
``start_epoch..epochs-1``; every epoch it trains, validates, tests where the result is reported (every
epoch under protocol=paper, whose validation set is the test set; under protocol=clean only on a new best
validation accuracy), logs, writes ``checkpoints/last.pt`` and, on a new best validation accuracy, ``best.pt``.
Every epoch starts by reseeding all RNGs from (seed, epoch), so a run resumed from ``last.pt`` continues
exactly as the uninterrupted run would have. The loss and the metric come from the dataset's task
(``engine/tasks.py``: cross-entropy and accuracy, or mean squared error for a regression, or both per time step).
"""
from __future__ import annotations

import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from ckconv import FlexConv
from ckconv.nn import anti_aliasing_penalty, kernel_norm_penalty
from models import kernel_sizes

from .checkpoint import CheckpointError, CrossResState, save_checkpoint, state_dict_mismatch
from .optim import Schedule
from .preemption import StopRequest
from .resample import at_test_rate
from .runtime import broadcast_from_main, on_terminal
from .specs import LoopSpec, RunSpec
from .tasks import TASKS, Task, get_task

CLASSIFICATION_TASK = TASKS["classification"]


# Live tqdm bars only on a terminal, decided once per process. Redirected (SLURM, CI, `> log 2>&1`) the
# log gets one line per epoch (Trainer.fit) and the run's summary line instead: a bar written to a file is
# never redrawn and leaves a `0%|    | 0/57` fragment for every loader pass.
LIVE_BARS = on_terminal()


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint is kept."""


@dataclass
class Regularizers:
    """Extra loss terms of the original: the kernel-norm penalty (``train.weight_decay``) and the
    anti-aliasing penalty (``kernel.regularize``)."""

    kernel_norm: float = 0.0
    anti_aliasing: dict | None = None  # kwargs of ckconv.nn.anti_aliasing_penalty (resolution, factor, ...)

    def __call__(self, model: torch.nn.Module) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """Total extra loss and the anti-aliasing part (for logging as ``gabor_reg``; a tensor, so that
        reading it does not wait for the device)."""
        total, aa = 0.0, 0.0
        if self.kernel_norm > 0:
            total = total + self.kernel_norm * kernel_norm_penalty(model)
        if self.anti_aliasing is not None:
            aa_term = anti_aliasing_penalty(model, **self.anti_aliasing)
            total = total + aa_term
            aa = aa_term.detach()
        return total, aa


@dataclass
class BestState:
    """What the run knows about its best epoch so far (stored in checkpoints). The metric is the task's: accuracy
    for classification, mean squared error for a regression; checkpoints and summaries name the fields after it
    (``val_accuracy``, ``test_accuracy``, ``best_test_accuracy``; ``val_mse``, ...)."""

    val_metric: float | None = None          # validation metric at the best epoch (None: no epoch yet)
    val_loss: float = math.inf
    epoch: int = 0                 # 1-based epoch of the best validation metric
    test_metric: float | None = None         # test metric at that epoch
    best_test_metric: float | None = None    # best test metric over epochs (protocol=paper only; else None)
    epochs_since_best: int = 0

    def improved_by(self, task: Task, metric: float, loss: float) -> bool:
        # The original's rule: a better metric, or an equal one with a loss that is not worse.
        if self.val_metric is None:
            return True
        better, best = task.score(metric), task.score(self.val_metric)
        return better > best or (better == best and loss <= self.val_loss)

    def stored(self, task: Task) -> dict:
        """The fields under the task's names (a classification checkpoint's ``best`` entry, as it always was)."""
        m = task.metric
        return {f"val_{m}": self.val_metric, "val_loss": self.val_loss, "epoch": self.epoch,
                f"test_{m}": self.test_metric, f"best_test_{m}": self.best_test_metric,
                "epochs_since_best": self.epochs_since_best}

    @classmethod
    def from_stored(cls, stored: dict, task: Task) -> "BestState":
        m = task.metric
        return cls(val_metric=stored[f"val_{m}"], val_loss=stored["val_loss"], epoch=stored["epoch"],
                   test_metric=stored[f"test_{m}"], best_test_metric=stored[f"best_test_{m}"],
                   epochs_since_best=stored["epochs_since_best"])

    def summary(self, task: Task) -> dict:
        """``best_val_<metric>``, ``test_<metric>`` (at the best epoch), ``best_test_<metric>`` for summary.json."""
        m = task.metric
        return {f"best_val_{m}": self.val_metric, f"test_{m}": self.test_metric,
                f"best_test_{m}": self.best_test_metric}


def autocast_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the device has it (CPUs, recent GPUs); float16 (with a GradScaler) on older GPUs."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast_context(device: torch.device, enabled: bool):
    """Mixed precision (``train.mixed_precision``) on CPU and CUDA; the FFT convolutions compute in float32."""
    if enabled:
        return torch.autocast(device_type=device.type, dtype=autocast_dtype(device))
    return nullcontext()


def grad_scaler(device: torch.device, enabled: bool) -> "torch.amp.GradScaler | None":
    """A loss scaler where mixed precision runs in float16 (bfloat16 has float32's range and needs none)."""
    if enabled and autocast_dtype(device) == torch.float16:
        return torch.amp.GradScaler(device.type)
    return None


def reseed_for_epoch(seed: int, epoch: int, loader) -> None:
    """Deterministic RNG state at the start of every epoch (shuffling, augmentation, dropout)."""
    epoch_seed = (seed * 1_000_003 + epoch) % 2**63
    random.seed(epoch_seed)
    np.random.seed(epoch_seed % 2**32)
    torch.manual_seed(epoch_seed)
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(epoch_seed)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _limited(loader, limit: int):
    for index, batch in enumerate(loader):
        if 0 <= limit <= index:
            return
        yield batch


def _n_batches(loader, limit: int) -> int:
    return len(loader) if limit < 0 else min(limit, len(loader))


def training_loss(model, raw_model, inputs: torch.Tensor, labels: torch.Tensor, regularizers: Regularizers,
                  device: torch.device, *, mixed_precision: bool = False, dropout_in: float = 0.0,
                  task: Task = CLASSIFICATION_TASK):
    """The training objective of one batch: input dropout, the task's loss (cross-entropy; mean squared error for a
    regression; under autocast when enabled) plus the regularisers of ``raw_model``. Returns
    ``(loss, outputs, anti-aliasing part)``."""
    if dropout_in > 0:
        inputs = F.dropout(inputs, p=dropout_in, training=True)
    with autocast_context(device, mixed_precision):
        outputs = model(inputs)
        loss = task.loss(outputs.float(), labels)
    extra, aa = regularizers(raw_model)
    return loss + extra, outputs, aa


def train_one_epoch(model, loader, optimizer, schedule: Schedule, regularizers: Regularizers, loop: LoopSpec,
                    device: torch.device, epoch: int, global_step: int, *, mixed_precision: bool = False,
                    grad_clip: float = 0.0, progress: bool = False, raw_model=None, stop: StopRequest | None = None,
                    scaler=None, task: Task = CLASSIFICATION_TASK) -> tuple[dict | None, int, bool]:
    """One pass over the training loader; returns (metrics, global_step, stopped).

    Losses and accuracies accumulate on the device and are read every ``loop.log_every`` steps and at
    the end of the epoch, so a step does not wait for the device. At those reads a non-finite loss stops
    the run (on every rank, naming the step where it first happened) and a stop request (a signal, on any
    rank) ends the epoch; without DDP a stop request is seen after the very step it arrived in.
    ``stopped``: the epoch was left early, so its metrics are None and nothing of it is to be saved.
    """
    raw_model = raw_model if raw_model is not None else model
    model.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * batch, metric sum, anti-aliasing * batch
    first_bad = torch.zeros((), dtype=torch.long, device=device)  # step of the first non-finite loss (0: none)
    bad_loss = torch.zeros((), device=device)
    count = 0
    n_steps = _n_batches(loader, loop.limit_train_batches)
    distributed = dist.is_available() and dist.is_initialized()
    bar = tqdm(_limited(loader, loop.limit_train_batches), total=n_steps,
               desc=f"epoch {epoch + 1}/{loop.epochs} train", leave=False,
               disable=not (progress and LIVE_BARS), dynamic_ncols=True)
    for step_in_epoch, (inputs, labels) in enumerate(bar, start=1):
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss, outputs, aa = training_loss(model, raw_model, inputs, labels, regularizers, device,
                                          mixed_precision=mixed_precision, dropout_in=loop.dropout_in, task=task)
        newly_bad = (first_bad == 0) & ~torch.isfinite(loss.detach())
        first_bad = torch.where(newly_bad, step_in_epoch, first_bad)
        bad_loss = torch.where(newly_bad, loss.detach().float(), bad_loss)
        _backward_and_step(loss, model, optimizer, grad_clip, scaler)
        global_step += 1
        schedule.step_iteration(global_step)
        batch = labels.shape[0]
        sums += torch.stack([loss.detach().double() * batch, task.metric_sum(outputs, labels).double(),
                             torch.as_tensor(aa, dtype=torch.float64, device=device) * batch])
        count += batch
        local_stop = stop is not None and stop.requested
        if step_in_epoch % loop.log_every and step_in_epoch != n_steps and (distributed or not local_stop):
            continue
        # A read of the device: the only one of these steps.
        _raise_if_not_finite(first_bad, bad_loss, epoch, global_step - step_in_epoch, step_in_epoch)
        if _stop_on_any_rank(local_stop, device):
            bar.close()
            return None, global_step, True
        totals = sums.tolist()
        bar.set_postfix(loss=f"{totals[0] / count:.4f}", **{task.label: f"{totals[1] / count:.4f}"}, refresh=False)
    bar.close()
    totals = sums.tolist()
    metrics = {"loss_train": totals[0] / max(count, 1), f"{task.metric}_train": totals[1] / max(count, 1),
               "lr": optimizer.param_groups[0]["lr"]}
    if regularizers.anti_aliasing is not None:
        metrics["gabor_reg_train"] = totals[2] / max(count, 1)
    return _all_reduce_mean(metrics, count), global_step, False


def _backward_and_step(loss: torch.Tensor, model, optimizer, grad_clip: float, scaler) -> None:
    if scaler is None:
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


_NO_STEP = 2**62  # "no non-finite loss" when taking the minimum over ranks


def _raise_if_not_finite(first_bad: torch.Tensor, bad_loss: torch.Tensor, epoch: int, epoch_start_step: int,
                         step_in_epoch: int) -> None:
    """Raise NonFiniteLossError on every rank if a loss so far in this epoch was NaN/inf on any rank; the
    message names the first such step. Under DDP a NaN in one process must stop all of them at the same
    step: the others would otherwise wait forever in the next gradient all-reduce."""
    mine = int(first_bad) or _NO_STEP
    first = mine
    if dist.is_available() and dist.is_initialized():
        flag = torch.tensor([mine], dtype=torch.long, device=first_bad.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        first = int(flag)
    if first == _NO_STEP:
        return
    value = f"{float(bad_loss)}" if mine == first else "non-finite in another process"
    noticed = f" (noticed at step {step_in_epoch}: the loss is read every train.log_every steps)" \
        if step_in_epoch != first else ""
    raise NonFiniteLossError(f"loss became {value} at epoch {epoch + 1}, step {first} (global step "
                             f"{epoch_start_step + first}){noticed}; the last checkpoint is kept. Try a lower "
                             f"train.lr or train.grad_clip > 0.")


def _stop_on_any_rank(requested: bool, device: torch.device) -> bool:
    if not (dist.is_available() and dist.is_initialized()):
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)


@torch.no_grad()
def evaluate(model, loader, device: torch.device, *, limit_batches: int = -1, top5: bool = False,
             mixed_precision: bool = False, progress: bool = False, desc: str = "eval",
             task: Task = CLASSIFICATION_TASK) -> dict:
    """Loss (the task's, without regularisers) and metric (``accuracy``, or ``mse`` for a regression) of ``model``
    on ``loader``; ``accuracy_top5`` too with ``top5`` (classification only).

    Under DDP each rank's loader holds its own disjoint shard of the set (``datasets.builder.EvalShard``;
    ``limit_batches`` then caps the batches of each shard): the sums are all-reduced, so every rank returns
    the metrics of the whole set, and every rank must call this.
    """
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, metric, correct in the top 5, samples
    bar = tqdm(_limited(loader, limit_batches), total=_n_batches(loader, limit_batches), desc=desc, leave=False,
               disable=not (progress and LIVE_BARS), dynamic_ncols=True)
    for inputs, labels in bar:
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast_context(device, mixed_precision):
            outputs = model(inputs).float()
        loss_sum, metric_sum = task.sums(outputs, labels)
        sums[0] += loss_sum.double()
        sums[1] += metric_sum
        if top5 and task.has_top5:
            k = min(5, outputs.shape[1])
            sums[2] += (outputs.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        sums[3] += labels.shape[0]
    bar.close()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    total_loss, metric, correct5, count = sums.tolist()
    result = {"loss": total_loss / max(count, 1), task.metric: metric / max(count, 1)}
    if top5 and task.has_top5:
        result["accuracy_top5"] = correct5 / max(count, 1)
    return result


def evaluate_with(spec: RunSpec, model, loader, device: torch.device, *, progress: bool = False,
                  desc: str = "eval") -> dict:
    """:func:`evaluate` with the run's settings (batch limit, top-5, mixed precision, the dataset's task): how every
    evaluation of a run - validation, test, checkpoint evaluation, out of the box, other resolutions - computes."""
    return evaluate(model, loader, device, limit_batches=spec.loop.limit_eval_batches, top5=spec.loop.report_top5,
                    mixed_precision=spec.runtime.mixed_precision, progress=progress, desc=desc,
                    task=get_task(spec.data.task))


def result_fields(test: dict) -> dict:
    """An evaluation's accuracy, loss and (where reported) top-5 accuracy under their summary names:
    ``test_accuracy``, ``test_loss``, ``test_accuracy_top5``."""
    return {f"test_{key}": value for key, value in test.items()}


def sync_buffers(model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, before a sharded evaluation. DDP
    broadcasts them at the start of each training forward, so after the last step every rank holds the
    statistics of its own last batch; the checkpoints keep rank 0's, and so must the evaluated model."""
    if dist.is_available() and dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def _all_reduce_mean(metrics: dict, count: float) -> dict:
    """Sample-weighted mean of per-rank metrics under DDP (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return metrics
    keys = sorted(k for k in metrics if k != "lr")
    values = torch.tensor([metrics[k] * count for k in keys] + [count], dtype=torch.float64)
    dist.all_reduce(values)
    reduced = {k: float(v / values[-1]) for k, v in zip(keys, values[:-1])}
    reduced["lr"] = metrics["lr"]
    return reduced


def epoch_line(metrics: dict, epochs: int, improved: bool = False, task: Task = CLASSIFICATION_TASK) -> str:
    """The one line an epoch prints, from its ``metrics.jsonl`` record, e.g.::

        epoch 3/40 | train loss 0.8123 acc 0.7012 | val acc 0.6875 | test acc 0.6790 | lr 0.00243 |
        kernel min/mean/max 9/14.3/33 | 41.2s | new best val acc

    (one line in the log; ``mse`` instead of ``acc`` for a regression). ``test acc`` only where the test set was
    evaluated this epoch; ``kernel``: taps of the largest side of every FlexConv/SRF layer's current (cropped)
    kernel, left out without such layers.
    """
    m, label = task.metric, task.label
    parts = [f"epoch {metrics['epoch']}/{epochs}",
             f"train loss {metrics['loss_train']:.4f} {label} {metrics[f'{m}_train']:.4f}",
             f"val {label} {metrics[f'{m}_val']:.4f}"]
    if f"{m}_test" in metrics:
        parts.append(f"test {label} {metrics[f'{m}_test']:.4f}")
    parts.append(f"lr {metrics['lr']:.3g}")
    taps = [max(size) for size in (metrics.get("kernel_sizes") or {}).values() if size]
    if taps:
        parts.append(f"kernel min/mean/max {min(taps)}/{sum(taps) / len(taps):.1f}/{max(taps)}")
    parts.append(f"{metrics['epoch_time_s']:.1f}s")
    if improved:
        parts.append(f"new best val {label}")
    return " | ".join(parts)


def report(line: str) -> None:
    """Print one line to stdout: above the live bars on a terminal, flushed at once in a log file (a SLURM
    log is read while the job runs)."""
    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def layer_statistics(model: torch.nn.Module) -> dict:
    """What the layers learned, small enough for every metrics.jsonl line (engine/figures.py plots it).

    ``kernel_sizes``: {layer: taps per dimension, or None} of every FlexConv/SRF layer; for every FlexConv
    with a mask ``mask_sigmas`` and ``mask_means`` ({layer: one value per dimension, on the kernel's
    [-1, 1] grid}); for every SRF (N-Jet) layer ``srf_scales`` ({layer: sigma in pixels}). A key without
    layers is left out.
    """
    from ckconv import SRFConv

    stats = {"kernel_sizes": {name: list(size) if size is not None else None
                              for name, size in kernel_sizes(model).items()}}
    masked = [(name, module) for name, module in model.named_modules()
              if isinstance(module, FlexConv) and module.mask_params is not None]
    if masked:
        stats["mask_sigmas"] = {name: [round(float(s), 5) for s in module.mask_sigma] for name, module in masked}
        stats["mask_means"] = {name: [round(float(m), 5) for m in module.mask_mean] for name, module in masked}
    scales = {name: round(float(module.sigma().detach()), 5)
              for name, module in model.named_modules() if isinstance(module, SRFConv)}
    if scales:
        stats["srf_scales"] = scales
    return stats


def draw_figures(model, run_dir: Path, logger, meta, step: int | None = None) -> list[Path]:
    """Kernels, masks and kernel sizes of ``model`` into ``<run_dir>/figures/`` (and W&B); never fails a run.
    The kernel-size curve is read from the run's ``metrics.jsonl`` (the root one for cross-resolution)."""
    from .figures import write_run_figures

    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists() and (run_dir.parent / "metrics.jsonl").exists():
        metrics = run_dir.parent / "metrics.jsonl"  # a cross-resolution phase directory
    paths = write_run_figures(model, run_dir / "figures", metrics, input_shape=tuple(meta.input_shape))
    if paths:
        logger.log_images({f"figures/{path.stem}": path for path in paths}, step=step)
    return paths


class Trainer:
    """Runs the epochs of one training phase and keeps its checkpoints and logs up to date. The loop settings,
    precision, gradient clipping and seed come from ``spec``; checkpoints store its config and model spec."""

    def __init__(self, *, spec: RunSpec, model, raw_model, optimizer, schedule: Schedule, data,
                 regularizers: Regularizers, device: torch.device, logger, checkpoint_dir: Path, is_main: bool = True,
                 step_offset: int = 0, crossres: CrossResState | None = None, stop: StopRequest | None = None):
        self.spec, self.loop = spec, spec.loop
        self.model, self.raw_model = model, raw_model
        self.optimizer, self.schedule = optimizer, schedule
        self.data, self.regularizers = data, regularizers
        self.device, self.logger = device, logger
        self.checkpoint_dir = Path(checkpoint_dir)
        self.is_main = is_main
        self.step_offset = step_offset  # W&B step of epoch 0 (cross-resolution phases continue the steps)
        self.crossres = crossres
        self.stop = stop  # set by SIGTERM / SIGUSR1 / SIGUSR2 (engine.preemption)
        self.scaler = grad_scaler(device, spec.runtime.mixed_precision)  # float16 mixed precision only
        self.task = get_task(data.meta.task)  # loss, metric and the names they are reported under
        self.best = BestState()
        self.epoch = 0
        self.global_step = 0
        self.elapsed_s = 0.0  # training wall time over all (resumed) processes

    # --- checkpoints ---------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {
            "model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "epoch": self.epoch, "global_step": self.global_step,
            "best": self.best.stored(self.task), "config": dict(self.spec.config),
            "model_spec": self.spec.model.to_dict(),
            "data_state": dict(self.data.state), "wandb_id": self.logger.wandb_id,
            "elapsed_s": self.elapsed_s,
            **({"crossres": asdict(self.crossres)} if self.crossres is not None else {}),
            **({"grad_scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
        }

    def restore(self, checkpoint: dict) -> None:
        """Continue from a checkpoint written by :meth:`checkpoint_state`."""
        mismatch = state_dict_mismatch(self.raw_model.state_dict(), checkpoint.get("model", {}))
        if mismatch:
            raise CheckpointError(f"the checkpoint's weights do not fit the model of this run: {mismatch}. Resume "
                                  f"without overriding the model keys it was trained with")
        try:
            self.raw_model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.schedule.load_state_dict(checkpoint["schedule"])
            if self.scaler is not None and "grad_scaler" in checkpoint:
                self.scaler.load_state_dict(checkpoint["grad_scaler"])
        except (KeyError, ValueError, RuntimeError) as error:
            # E.g. a model key or train.scheduler / train.optimizer overridden on resume.
            raise CheckpointError(f"the checkpoint does not fit this run ({type(error).__name__}: "
                                  f"{str(error).splitlines()[0] if str(error) else ''}); resume without overriding "
                                  f"the model, optimiser or scheduler keys it was trained with") from None
        self.epoch, self.global_step = int(checkpoint["epoch"]), int(checkpoint["global_step"])
        self.best = BestState.from_stored(checkpoint["best"], self.task)
        self.elapsed_s = float(checkpoint.get("elapsed_s", 0.0))

    def _save(self, name: str, state: dict) -> None:
        if self.is_main:
            save_checkpoint(state, self.checkpoint_dir / name)

    # --- the loop ------------------------------------------------------------------------------------
    def fit(self) -> str:
        """Train until ``loop.epochs``, early stopping or a stop request; returns the stop reason:
        "completed", "early_stopped" or "preempted"."""
        loop, progress = self.loop, self.is_main
        while self.epoch < loop.epochs:
            epoch = self.epoch
            start = time.perf_counter()
            reseed_for_epoch(self.spec.runtime.seed, epoch, self.data.train_loader)
            train_metrics, self.global_step, stopped = train_one_epoch(
                self.model, self.data.train_loader, self.optimizer, self.schedule, self.regularizers, loop,
                self.device, epoch, self.global_step, mixed_precision=self.spec.runtime.mixed_precision,
                grad_clip=self.spec.optim.grad_clip, progress=progress, raw_model=self.raw_model, stop=self.stop,
                scaler=self.scaler, task=self.task)
            if stopped:  # left inside the epoch: last.pt keeps the previous one
                return "preempted"
            sync_buffers(self.raw_model)
            val = broadcast_from_main(evaluate_with(self.spec, self.raw_model, self.data.val_loader, self.device,
                                                    progress=progress, desc="validation"))
            task, metric = self.task, self.task.metric
            self.schedule.step_epoch(task.score(val[metric]))  # plateau: "max" mode on the score
            self.epoch = epoch + 1

            improved = self.best.improved_by(task, val[metric], val["loss"])
            # protocol=paper: the test set is the validation set, known every epoch, and best_test_accuracy is
            # its maximum (the paper's number). protocol=clean: only the test accuracy at the best-validation
            # epoch is reported, so the test set is evaluated only when validation improved (best_test_accuracy
            # stays None: a maximum over those epochs would be neither number).
            selects_on_test = self.data.test_loader is self.data.val_loader
            test = None
            if selects_on_test:
                test = val
            elif improved:
                with at_test_rate(self.raw_model, self.spec.data):  # sr_test: the kernels resampled meanwhile
                    test = broadcast_from_main(evaluate_with(self.spec, self.raw_model, self.data.test_loader,
                                                             self.device, progress=progress, desc="test"))
            if improved:
                self.best.val_metric, self.best.val_loss = val[metric], val["loss"]
                self.best.epoch, self.best.test_metric = self.epoch, test[metric]
                self.best.epochs_since_best = 0
            else:
                self.best.epochs_since_best += 1
            if selects_on_test and (self.best.best_test_metric is None
                                    or task.score(test[metric]) > task.score(self.best.best_test_metric)):
                self.best.best_test_metric = test[metric]

            self.elapsed_s += time.perf_counter() - start
            metrics = {"epoch": self.epoch, **train_metrics, **{f"{k}_val": v for k, v in val.items()},
                       **({f"{k}_test": v for k, v in test.items()} if test is not None else {}),
                       f"best_val_{metric}": self.best.val_metric, "epoch_time_s": time.perf_counter() - start,
                       **layer_statistics(self.raw_model)}
            self.logger.log_epoch(metrics, step=self.step_offset + self.epoch)
            if self.is_main and loop.plot_every > 0 and self.epoch % loop.plot_every == 0:
                draw_figures(self.raw_model, self.checkpoint_dir.parent, self.logger, self.data.meta,
                             step=self.step_offset + self.epoch)
            state = self.checkpoint_state()
            self._save("last.pt", state)
            if improved:
                self._save("best.pt", state)
            self.logger.update_summary(
                **self.best.summary(task), best_epoch=self.best.epoch,
                epochs_completed=self.epoch, kernel_sizes=metrics["kernel_sizes"])
            if progress:  # rank 0 only, on a terminal and in a log file alike
                report(epoch_line(metrics, loop.epochs, improved, task))
            if 0 <= loop.early_stop_patience <= self.best.epochs_since_best:
                return "early_stopped"
            if self.stop is not None and broadcast_from_main(self.stop.requested) and self.epoch < loop.epochs:
                return "preempted"  # the signal came during evaluation or saving: this epoch is complete
        return "completed"
