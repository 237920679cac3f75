"""What a preset costs on the path it runs by default, against the spatial path, the floor and another checkout.

Every preset runs ``conv.use_fft=auto``: each FlexConv takes the faster exact path (spatial or FFT) for its
current kernel size. For the paper models at their initial kernel sizes and with every kernel grown to the
whole grid (``FlexConv.grow_mask``), this measures a training step (forward, loss, backward, Adam) and an
evaluation forward (eval mode, kernel cache on) and the peak memory of training, for

* ``preset``: the preset as it runs;
* ``spatial``: the same model with ``conv.use_fft=false``, the algorithm of the original code;
* ``floor``: the plain network with the FlexConv kernels frozen into ordinary weights, convolved with the
  faster of the spatial and the FFT algorithm (what the convolutions alone cost; time only);
* ``baseline`` (with ``--baseline PATH``): the preset run by another checkout of this project, e.g. the
  commit before a change.

Every measurement runs in a fresh process (one per model, variant and round, interleaved over the rounds so a
busier stretch of the machine affects all variants alike). Steps of more than ``--single-shot`` seconds
(grown kernels convolved spatially: minutes on a CPU) are timed once. Peak memory is a per-process number
measured in a process of its own: "train MB" is the peak resident memory of one training step minus the
memory before it (model, optimiser and batch built), with glibc told to give every freed buffer of 64 KiB or
more back to the system (``MALLOC_MMAP_THRESHOLD_``), so that the resident memory follows the live tensors
instead of what the allocator happens to keep; it would slow the timed steps, hence the separate process.

    python benchmarks/fast_default.py                                   # all rows, 2 threads, batch 64
    python benchmarks/fast_default.py --rows flextcn2-init flextcn2-grown --baseline /tmp/main-before
    python benchmarks/fast_default.py --json fast_default.json           # also write every number
    python benchmarks/fast_default.py --table fast_default.json          # the table of a saved run
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = {  # name: (preset, kernel state)
    "flexnet7-init": ("t3_cifar10_flexnet7", "init"),
    "flexnet7-grown": ("t3_cifar10_flexnet7", "grown"),
    "flextcn2-init": ("t1_smnist_flextcn2", "init"),
    "flextcn2-grown": ("t1_smnist_flextcn2", "grown"),
    "flextcn4-init": ("t1_scifar10_flextcn4", "init"),
    "flextcn4-grown": ("t1_scifar10_flextcn4", "grown"),
}
# The goals this benchmark checks: (description, row, numerator, denominator, quantity, limit).
GOALS = (
    ("FlexNet-7 grown: preset train step / spatial", "flexnet7-grown", "preset", "spatial", "train_ms", 0.1),
    ("FlexNet-7 grown: preset evaluation / spatial", "flexnet7-grown", "preset", "spatial", "eval_ms", 0.2),
    ("FlexNet-7 grown: preset training memory / spatial", "flexnet7-grown", "preset", "spatial", "train_mb", 1.2),
    ("FlexNet-7 grown: preset train step / baseline", "flexnet7-grown", "preset", "baseline", "train_ms", 1.1),
    ("FlexNet-7 init: preset train step / baseline", "flexnet7-init", "preset", "baseline", "train_ms", 1.05),
    ("FlexTCN-2 init: preset train step / baseline", "flextcn2-init", "preset", "baseline", "train_ms", 0.77),
    ("FlexTCN-2 grown: preset train step / baseline", "flextcn2-grown", "preset", "baseline", "train_ms", 0.77),
    ("FlexTCN-4 init: preset train step / baseline", "flextcn4-init", "preset", "baseline", "train_ms", 0.77),
    ("FlexTCN-4 grown: preset train step / baseline", "flextcn4-grown", "preset", "baseline", "train_ms", 0.77),
)
RESULT_MARK = "RESULT "


# --- one measurement, in its own process ------------------------------------------------------------------
def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(checkout: str, row: str, variant: str, threads: int, batch: int, steps: int,
                single_shot_s: float, memory: bool) -> dict:
    """Build ``row``'s preset from ``checkout``'s code and time it as ``variant``; runs in a worker process."""
    sys.path.insert(0, checkout)
    import torch
    import torch.nn.functional as F

    from config import read_command
    from engine.build import build_run_model, input_meta
    from engine.profiler import cpu_peak_rss_mb

    torch.set_num_threads(threads)
    preset, state = ROWS[row]
    overrides = [f"experiment={preset}", "device=cpu", "wandb.mode=disabled"]
    if variant == "spatial":
        overrides.append("conv.use_fft=false")
    spec = read_command(overrides).spec
    meta = input_meta(spec)
    torch.manual_seed(0)
    model = build_run_model(spec, meta)
    x, y = torch.randn(batch, *meta.input_shape), torch.randint(0, meta.num_classes, (batch,))
    if state == "grown":
        for layer in model.modules():
            if hasattr(layer, "grow_mask"):
                layer.grow_mask()
    if variant.startswith("floor"):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from flexnet_vs_floor import floor_network
        model = floor_network(model, x, use_fft=variant == "floor_fft")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: the kernel sizes stay where they are

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    @torch.no_grad()
    def eval_forward():
        model.eval()
        model(x)

    def times(fn) -> list[float]:
        start = time.perf_counter()
        fn()  # warm-up: allocations, FFT plans, the eval kernel cache
        first = time.perf_counter() - start
        if first > single_shot_s:
            return [first]
        out = []
        for _ in range(steps):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return out

    if memory:
        before = resident_mb()
        train_step()
        return {"train_mb": cpu_peak_rss_mb() - before}
    train = times(train_step)
    kernel_sizes = sorted({tuple(m.kernel_size) for m in model.modules() if getattr(m, "kernel_size", None)
                           and hasattr(m, "grow_mask")})
    evaluation = times(eval_forward)
    return {"train_ms": 1000 * statistics.median(train), "eval_ms": 1000 * statistics.median(evaluation),
            "kernel_sizes": [list(k) for k in kernel_sizes]}


def run_worker(checkout: Path, row: str, variant: str, args, memory: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", row, variant, "--checkout", str(checkout),
               "--threads", str(args.threads), "--batch", str(args.batch), "--steps", str(args.steps),
               "--single-shot", str(args.single_shot)] + (["--memory"] if memory else [])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536") if memory else None
    done = subprocess.run(command, capture_output=True, text=True, cwd=checkout, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{row} / {variant} in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


# --- the table --------------------------------------------------------------------------------------------
def merge(runs: list[dict]) -> dict:
    """The median of each quantity over the processes that measured it."""
    return {key: runs[0][key] if key == "kernel_sizes" else statistics.median(run[key] for run in runs)
            for key in runs[0]}


def ratio(results: dict, row: str, num: str, den: str, quantity: str) -> float | None:
    a, b = results.get(row, {}).get(num, {}).get(quantity), results.get(row, {}).get(den, {}).get(quantity)
    return None if a is None or not b else a / b


def format_table(results: dict) -> str:
    def cell(r, variant, keys=("train_ms", "eval_ms")):
        m = r.get(variant)
        return " / ".join("-" if m.get(k) is None else f"{m[k]:.0f}" for k in keys) if m else "-"

    def ratios(row, r, den, quantities):
        values = (ratio({row: r}, row, "preset", den, q) for q in quantities)
        return ", ".join("-" if v is None else f"{v:.2f}" for v in values)

    lines = ["| model, kernels | preset train / eval ms, train MB | spatial (original) | floor | baseline | "
             "preset / spatial (train, eval, MB) | preset / floor (train, eval) | preset / baseline (train, eval, MB) |",
             "|---|---|---|---|---|---|---|---|"]
    every = ("train_ms", "eval_ms", "train_mb")
    for row, r in results.items():
        floor = min((r[v] for v in ("floor_spatial", "floor_fft") if v in r), key=lambda m: m["train_ms"],
                    default=None)
        r = dict(r, floor=floor) if floor else r
        sizes = "x".join(str(s) for s in r["preset"]["kernel_sizes"][-1]) if r["preset"]["kernel_sizes"] else "-"
        lines.append(
            f"| {row} (largest {sizes}) | {cell(r, 'preset')}, {cell(r, 'preset', ('train_mb',))} | "
            f"{cell(r, 'spatial')}, {cell(r, 'spatial', ('train_mb',))} | {cell(r, 'floor')} | "
            f"{cell(r, 'baseline')}, {cell(r, 'baseline', ('train_mb',))} | {ratios(row, r, 'spatial', every)} | "
            f"{ratios(row, r, 'floor', every[:2])} | {ratios(row, r, 'baseline', every)} |")
    return "\n".join(lines)


def report(results: dict, args: dict) -> None:
    print(f"\nbatch {args['batch']}, {args['threads']} threads, median of {args['steps']} steps x {args['rounds']} "
          f"processes (steps over {float(args['single_shot']):.0f} s timed once)\n")
    print(format_table(results))
    print()
    for line in check_goals(results):
        print(line)


def check_goals(results: dict) -> list[str]:
    out = []
    for description, row, num, den, quantity, limit in GOALS:
        value = ratio(results, row, num, den, quantity)
        if value is not None:
            out.append(f"{'met ' if value <= limit else 'MISSED'}  {description}: {value:.2f} (goal <= {limit})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--variants", nargs="+", default=["preset", "spatial", "floor_spatial", "floor_fft"],
                        choices=["preset", "spatial", "floor_spatial", "floor_fft"])
    parser.add_argument("--baseline", type=Path, help="another checkout of this project to run the presets with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process (median)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per measurement, interleaved")
    parser.add_argument("--single-shot", type=float, default=20.0,
                        help="a first step longer than this (seconds) is the measurement")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--table", type=Path, metavar="JSON", help="print the table of a run saved with --json")
    parser.add_argument("--worker", nargs=2, metavar=("ROW", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--checkout", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = measure_one(args.checkout, *args.worker, args.threads, args.batch, args.steps, args.single_shot,
                             args.memory)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    if args.table:
        saved = json.loads(args.table.read_text())
        report(saved["results"], saved["args"])
        return

    jobs = [(row, variant, ROOT) for row in args.rows for variant in args.variants]
    if args.baseline:
        jobs += [(row, "baseline", args.baseline.resolve()) for row in args.rows]
    runs: dict = {}
    slow = set()  # (row, variant) whose steps are timed once: one process is enough
    try:
        from tqdm import tqdm
        progress = tqdm(total=len(jobs) * (args.rounds + 1), desc="measurements")
    except ImportError:  # pragma: no cover - tqdm is a project requirement
        progress = None
    for _ in range(args.rounds):
        for row, variant, checkout in jobs:
            if (row, variant) not in slow:
                result = run_worker(checkout, row, "preset" if variant == "baseline" else variant, args)
                runs.setdefault(row, {}).setdefault(variant, []).append(result)
                if result["train_ms"] > 1000 * args.single_shot:
                    slow.add((row, variant))
            if progress is not None:
                progress.update()
    memory = {}
    for row, variant, checkout in jobs:
        if not variant.startswith("floor"):
            memory[row, variant] = run_worker(checkout, row, "preset" if variant == "baseline" else variant, args,
                                              memory=True)["train_mb"]
        if progress is not None:
            progress.update()
    if progress is not None:
        progress.close()
    results = {row: {variant: dict(merge(rs), train_mb=memory.get((row, variant)))
                     for variant, rs in variants.items()} for row, variants in runs.items()}
    report(results, vars(args))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
