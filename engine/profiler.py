"""``run_profiler.py``: build any configured model and time or profile it on synthetic inputs.

The model, its input shape and its loss are built exactly as ``run_experiment.py`` builds them
(``engine.build``, ``engine.trainer.training_loss``) - no dataset files are read (``profile.data_mode=fake``, the
default). Inputs are ``torch.randn(train.batch_size, *input_shape)`` with random labels: 1D or 2D, with the
dataset's channel count (the original always fed 3-channel images).

Modes (``profile.mode``):

* ``bench``: median over ``profile.n_batches`` (after ``profile.warmup_batches`` untimed) of
  - train mode: forward (autograd on) and forward + loss + backward (with the run's regularisers), no
    optimiser step, so kernel sizes stay fixed while timing;
  - eval mode: no-grad forward with the eval-time kernel cache warm (what inference costs), the same
    with the cache cleared before every batch, and forward + backward;
  samples per second, peak memory, and the current kernel sizes.
* ``profile``: the bench, then ``torch.profiler`` (CPU, + CUDA when present) over forward AND backward
  in train mode and over the eval forward: tables sorted by self time (CUDA time on a GPU), the
  key averages as CSV (``timings.csv``, ``timings_eval.csv``) and Chrome traces (``trace.json``,
  ``trace_eval.json``; open in chrome://tracing or https://ui.perfetto.dev).

``profile.grow_masks=true`` first sets every FlexConv mask to cover the whole grid (``FlexConv.grow_mask``),
so the cost of a trained model (whose kernels have grown) is visible before training it.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` per mode (tensors only); on the CPU the peak
resident set size of the whole process (``resource.getrusage``, includes Python, torch and the model), once
for the run, as no per-phase CPU allocator statistics exist.

``profile.json`` (in the run directory) holds ``no_params``, ``forward_ms`` / ``forward_backward_ms`` /
``samples_per_s`` (train mode), the same per mode under ``train`` and ``eval``, ``peak_memory_mb``,
``kernel_sizes``, the device and the input shape.
"""
from __future__ import annotations

import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from ckconv import CKConv, FlexConv
from datasets import PER_STEP_CLASSIFICATION, REGRESSION, DatasetMeta
from models import count_parameters, kernel_sizes

from .build import build_regularizers, build_run_data, input_meta, load_pretrained
from .lifecycle import Run, SpecSource, start_run
from .logger import write_json
from .runtime import Dist
from .specs import RunSpec
from .tasks import get_task
from .trainer import Regularizers, autocast_context, training_loss

TABLE_ROWS = 30
PROFILE_MODES = ("bench", "profile")        # the allowed values of ``profile.mode``
PROFILE_DATA_MODES = ("fake", "dataset")    # ... and of ``profile.data_mode``


# --- inputs ---------------------------------------------------------------------------------------------
def profiled_meta(spec: RunSpec) -> DatasetMeta:
    """Shape of one sample: the dataset's (resized as training resizes it), or ``profile.data_shape``."""
    meta = input_meta(spec)
    size = spec.profile.data_shape
    if size and meta.data_dim == 2:
        return input_meta(spec, resolution=size)
    if size:  # sequences: data_shape is the sequence length
        return dataclasses.replace(meta, input_shape=(meta.in_channels, size))
    return meta


def synthetic_batch(meta: DatasetMeta, batch_size: int, seed: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch_size, *meta.input_shape, generator=generator)
    if meta.task == REGRESSION:  # targets of the dataset's task (engine/tasks.py)
        labels = torch.randn(batch_size, generator=generator)
    elif meta.task == PER_STEP_CLASSIFICATION:
        labels = torch.randint(0, meta.num_classes, (batch_size, meta.length), generator=generator)
    else:
        labels = torch.randint(0, meta.num_classes, (batch_size,), generator=generator)
    return inputs.to(device), labels.to(device)


def dataset_batches(spec: RunSpec, device, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``profile.data_mode=dataset``: up to ``count`` batches of the training loader (needs the files)."""
    data = build_run_data(spec, device, Dist())
    batches = []
    for inputs, labels in data.train_loader:
        batches.append((inputs.to(device), labels.to(device)))
        if len(batches) >= count:
            break
    return batches


# --- model -----------------------------------------------------------------------------------------------
def build_profiled_model(spec: RunSpec, run: Run, meta: DatasetMeta, first_batch: torch.Tensor) -> torch.nn.Module:
    model = run.model(spec, meta, what="profiling")
    if spec.runtime.loads_pretrained:
        load_pretrained(model, spec, run.run_dir)
    # One forward resolves "same"/"full" horizons (the grid is only known from an input).
    model.eval()
    with torch.no_grad():
        model(first_batch)
    if spec.profile.grow_masks:
        grown = 0
        for module in model.modules():
            if isinstance(module, FlexConv) and module.mask_params is not None:
                module.grow_mask()
                grown += 1
        print(f"grow_masks: {grown} FlexConv masks set to cover the whole kernel grid")
    return model


# --- timing ------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[int], None], n: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds per call of ``fn(i)`` for ``n`` calls after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    _sync(device)
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


class Steps:
    """The measured operations, each taking a batch index (``i``-th batch of the input list)."""

    def __init__(self, spec: RunSpec, model, meta, batches, device):
        self.model, self.batches, self.device = model, batches, device
        self.dropout_in = spec.loop.dropout_in
        self.mixed_precision = spec.runtime.mixed_precision
        self.regularizers = build_regularizers(spec, meta)
        self.task = get_task(meta.task)

    def _batch(self, i: int):
        return self.batches[i % len(self.batches)]

    def train_forward(self, i: int) -> None:
        inputs, _ = self._batch(i)
        if self.dropout_in > 0:
            inputs = torch.nn.functional.dropout(inputs, p=self.dropout_in, training=True)
        with torch.enable_grad(), autocast_context(self.device, self.mixed_precision):
            self.model(inputs)

    def train_step(self, i: int) -> None:
        """Forward, the training loss (with the run's regularisers) and backward; no optimiser step."""
        inputs, labels = self._batch(i)
        self.model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss, _, _ = training_loss(self.model, self.model, inputs, labels, self.regularizers, self.device,
                                       mixed_precision=self.mixed_precision, dropout_in=self.dropout_in,
                                       task=self.task)
            loss.backward()

    def eval_forward(self, i: int) -> None:
        with torch.no_grad(), autocast_context(self.device, self.mixed_precision):
            self.model(self._batch(i)[0])

    def eval_forward_uncached(self, i: int) -> None:
        self.model.eval()  # CKConv.train(False) drops the cached kernel
        self.eval_forward(i)

    def eval_step(self, i: int) -> None:
        """Forward + backward in eval mode (plain cross-entropy: no dropout, no regularisers)."""
        inputs, labels = self._batch(i)
        self.model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss, _, _ = training_loss(self.model, self.model, inputs, labels, Regularizers(), self.device,
                                       mixed_precision=self.mixed_precision, task=self.task)
            loss.backward()


def _ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times)


def _peak_cuda_mb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def cpu_peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def bench(steps: Steps, n: int, warmup: int, batch_size: int, device: torch.device) -> dict:
    model = steps.model
    results = {}

    model.train()
    _reset_peak(device)
    forward = time_calls(steps.train_forward, n, warmup, device)
    step = time_calls(steps.train_step, n, warmup, device)
    results["train"] = {"forward_ms": _ms(forward), "forward_backward_ms": _ms(step),
                        "forward_backward_min_ms": 1000 * min(step),
                        "samples_per_s": batch_size / statistics.median(step), "peak_memory_mb": _peak_cuda_mb(device)}
    model.zero_grad(set_to_none=True)

    model.eval()
    _reset_peak(device)
    has_cache = any(isinstance(m, CKConv) for m in model.modules())
    cached = time_calls(steps.eval_forward, n, warmup, device)
    uncached = time_calls(steps.eval_forward_uncached, n, warmup, device) if has_cache else cached
    eval_step = time_calls(steps.eval_step, n, warmup, device)
    results["eval"] = {"forward_ms": _ms(cached), "forward_uncached_ms": _ms(uncached),
                       "forward_backward_ms": _ms(eval_step), "samples_per_s": batch_size / statistics.median(cached),
                       "kernel_cache": has_cache, "peak_memory_mb": _peak_cuda_mb(device)}
    model.zero_grad(set_to_none=True)
    return results


# --- torch.profiler -----------------------------------------------------------------------------------------
def _self_time_key(device: torch.device) -> str:
    return "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"


def write_key_averages_csv(averages, path: Path) -> None:
    """One row per operator from ``key_averages()`` (times in microseconds, memory in bytes)."""
    import csv

    columns = ("name", "count", "self_cpu_time_us", "cpu_time_total_us", "self_device_time_us",
               "device_time_total_us", "self_cpu_memory_bytes", "self_device_memory_bytes")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for event in sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True):
            writer.writerow([event.key, event.count, f"{event.self_cpu_time_total:.3f}", f"{event.cpu_time_total:.3f}",
                             f"{getattr(event, 'self_device_time_total', 0.0):.3f}",
                             f"{getattr(event, 'device_time_total', 0.0):.3f}",
                             getattr(event, "self_cpu_memory_usage", 0), getattr(event, "self_device_memory_usage", 0)])


def run_torch_profiler(steps: Steps, n: int, warmup: int, device: torch.device, out_dir: Path) -> dict:
    """Profile ``n`` train steps (forward + backward) and ``n`` eval forwards; write tables, CSVs and traces."""
    from torch.profiler import ProfilerActivity, profile, record_function

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, mode, step, suffix in (("train forward+backward", True, steps.train_step, ""),
                                     ("eval forward (no grad)", False, steps.eval_forward, "_eval")):
        steps.model.train(mode)
        for i in range(warmup):  # untimed, outside the trace
            step(i)
        _sync(device)
        # No record_shapes: it keeps every operator's input tensors alive until the profile ends (a grown
        # FlexNet-7 added 1.1 GB per batch and was killed for memory after 20); the tables do not group by shape.
        with profile(activities=activities, record_shapes=False, profile_memory=True) as prof:
            for i in range(n):
                with record_function(f"{'train_step' if mode else 'eval_forward'}"):
                    step(warmup + i)
            _sync(device)
        averages = prof.key_averages()
        print(f"\n--- torch.profiler: {name}, {n} batches, sorted by self {'CUDA' if device.type == 'cuda' else 'CPU'} "
              f"time ---")
        print(averages.table(sort_by=_self_time_key(device), row_limit=TABLE_ROWS))
        csv_path, trace_path = out_dir / f"timings{suffix}.csv", out_dir / f"trace{suffix}.json"
        write_key_averages_csv(averages, csv_path)
        prof.export_chrome_trace(str(trace_path))
        files[f"timings{suffix}_csv"], files[f"trace{suffix}"] = str(csv_path), str(trace_path)
    steps.model.zero_grad(set_to_none=True)
    return files


# --- entry point ---------------------------------------------------------------------------------------------
def run(source: SpecSource, run_dir: Path) -> dict:
    """Build, time (and profile) the configured model; write ``profile.json`` into ``run_dir``."""
    spec = source.spec
    with start_run(spec, run_dir, signals=False) as run_:
        return profile_model(spec, run_)


def profile_model(spec: RunSpec, run: Run) -> dict:
    device, prof = run.device, spec.profile
    spec = run.seed(spec, fixed_seed=max(spec.runtime.seed, 0))  # timings need no drawn seed
    n, warmup, batch_size = prof.n_batches, prof.warmup_batches, spec.data.batch_size
    meta = profiled_meta(spec)
    if prof.data_mode == "dataset":
        batches = dataset_batches(spec, device, n + warmup)
        meta = dataclasses.replace(meta, input_shape=tuple(batches[0][0].shape[1:]))
        batch_size = int(batches[0][0].shape[0])
    else:
        batches = [synthetic_batch(meta, batch_size, spec.runtime.seed, device)]
    model = build_profiled_model(spec, run, meta, batches[0][0])
    no_params = count_parameters(model)
    sizes = {name: list(s) if s is not None else None for name, s in kernel_sizes(model).items()}
    print(f"input [{batch_size}, {', '.join(map(str, meta.input_shape))}], {n} batches after {warmup} warm-up")
    if sizes:
        print("kernel sizes: " + ", ".join(f"{name} {'x'.join(map(str, s)) if s else '?'}" for name, s in sizes.items()))

    steps = Steps(spec, model, meta, batches, device)
    results = bench(steps, n, warmup, batch_size, device)
    rss = cpu_peak_rss_mb()
    if device.type == "cuda":
        peak, peak_kind = max(results["train"]["peak_memory_mb"], results["eval"]["peak_memory_mb"]), \
            "cuda_max_memory_allocated"
    else:
        peak, peak_kind = rss, "cpu_process_peak_rss"
    print(format_bench(results, peak, peak_kind))

    report = {
        "no_params": no_params, "mode": prof.mode, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_version": torch.__version__, "threads": torch.get_num_threads(),
        "dataset": meta.name, "data_mode": prof.data_mode, "input_shape": [batch_size, *meta.input_shape],
        "batch_size": batch_size, "net_type": spec.model.net.type, "conv_type": spec.model.conv.type,
        "grow_masks": prof.grow_masks, "pretrained": spec.runtime.pretrained is not None,
        "mixed_precision": spec.runtime.mixed_precision, "n_batches": n, "warmup_batches": warmup,
        "forward_ms": results["train"]["forward_ms"], "forward_backward_ms": results["train"]["forward_backward_ms"],
        "samples_per_s": results["train"]["samples_per_s"], "peak_memory_mb": peak, "peak_memory_kind": peak_kind,
        "kernel_sizes": sizes, "train": results["train"], "eval": results["eval"],
        "config": dict(spec.config),
    }
    if prof.mode == "profile":
        out_dir = Path(prof.directory) if prof.directory else run.run_dir
        report["profile_files"] = run_torch_profiler(steps, n, warmup, device, out_dir)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run.run_dir / "profile.json", report)
    print(f"wrote {run.run_dir / 'profile.json'}")
    return report


def format_bench(results: dict, peak: float | None, peak_kind: str) -> str:
    train, evaluation = results["train"], results["eval"]
    lines = [f"{'':<6}{'forward':>12}{'fwd+bwd':>12}{'samples/s':>12}",
             f"{'train':<6}{train['forward_ms']:>10.2f}ms{train['forward_backward_ms']:>10.2f}ms"
             f"{train['samples_per_s']:>12.1f}   (samples/s of fwd+bwd)",
             f"{'eval':<6}{evaluation['forward_ms']:>10.2f}ms{evaluation['forward_backward_ms']:>10.2f}ms"
             f"{evaluation['samples_per_s']:>12.1f}   (no-grad forward"
             + (f"; kernel cache cleared every batch: {evaluation['forward_uncached_ms']:.2f}ms)"
                if evaluation["kernel_cache"] else ")")]
    if peak is not None:
        lines.append(f"peak memory {peak:.1f} MB ({peak_kind})")
    return "\n".join(lines)
