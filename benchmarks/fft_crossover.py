"""Where does FFT convolution beat spatial convolution on this device?

Times forward + backward (w.r.t. input and kernel) of one convolution, spatial vs FFT, side by side in one
run, over kernel sizes and input sizes, dense and depthwise, and prints the ratio spatial / FFT (> 1: FFT
is faster) with the crossover read off each input size. The ``use_fft="auto"`` rule is this table per device
type (``ckconv/nn/fft_crossover.json``): a layer uses the crossover of the largest measured input size up to its
input's length (1D) or smaller side (2D); ``--write`` stores the measured crossovers for ``--device`` there.

    python benchmarks/fft_crossover.py                           # CPU: 1D (causal) and 2D, dense and depthwise
    python benchmarks/fft_crossover.py --device cuda --write     # measure a GPU and make "auto" use it
    python benchmarks/fft_crossover.py --dims 2 --layouts dense --batch 64 --channels 24
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
from ckconv.nn import functional as Fn  # noqa: E402

INPUT_SIZES = {1: (64, 256, 1024), 2: (8, 16, 32)}
KERNEL_SIZES = {1: (5, 9, 13, 17, 25, 33, 65, 129, 257), 2: (3, 5, 7, 9, 11, 13, 15, 17, 21, 25, 33)}
NEVER = 10**6  # a crossover beyond every kernel measured: FFT never wins


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fwd_bwd(fn, x, kernel, repeats: int, depthwise: bool) -> float:
    """Median seconds of ``fn(x, kernel).sum().backward()``."""
    times = []
    for i in range(repeats + 1):
        x.grad, kernel.grad = None, None
        synchronize(x.device)
        start = time.perf_counter()
        fn(x, kernel, depthwise=depthwise).sum().backward()
        synchronize(x.device)
        if i:  # the first call warms up (allocations, plan caches)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def crossover(kernels: tuple[int, ...], ratios: list[float | None]) -> int:
    """The odd kernel size halfway between the last size where the FFT loses and the next one (where it
    then wins for every larger size measured); the smallest size if it never loses, NEVER if it never wins."""
    measured = [(k, r) for k, r in zip(kernels, ratios) if r is not None]
    losing = [index for index, (_, ratio) in enumerate(measured) if ratio <= 1.0]
    if not losing:
        return measured[0][0]
    last = losing[-1]
    if last == len(measured) - 1:
        return NEVER
    middle = math.ceil((measured[last][0] + measured[last + 1][0]) / 2)
    return middle if middle % 2 else middle + 1


def shown(dims: int, threshold: int) -> str:
    return "never" if threshold == NEVER else (f">= {threshold} taps" if dims == 1 else f">= {threshold} x {threshold}")


def sweep(dims: int, depthwise: bool, batch: int, channels: int, repeats: int, device: torch.device) -> dict:
    """Print the ratio table of one layout and return its crossover per input size, ``{"n": threshold}``."""
    pairs = (Fn.causal_conv1d, Fn.causal_fftconv1d) if dims == 1 else (Fn.conv2d_same, Fn.fftconv2d_same)
    kernels = KERNEL_SIZES[dims]
    layout = "depthwise" if depthwise else f"{channels}->{channels} channels"
    print(f"\n{dims}D {layout}, batch {batch}: ratio spatial/FFT time (fwd+bwd), >1 = FFT faster")
    print("input \\ kernel " + " ".join(f"{k:>6d}" for k in kernels) + "   crossover")
    thresholds = {}
    for n in INPUT_SIZES[dims]:
        ratios = []
        for k in kernels:
            if k > 2 * n - 1:
                ratios.append(None)
                continue
            x = torch.randn(batch, channels, *([n] * dims), device=device, requires_grad=True)
            kernel = torch.randn(channels, 1 if depthwise else channels, *([k] * dims), device=device,
                                 requires_grad=True)
            spatial = time_fwd_bwd(pairs[0], x, kernel, repeats, depthwise)
            fft = time_fwd_bwd(pairs[1], x, kernel, repeats, depthwise)
            ratios.append(spatial / fft)
        thresholds[str(n)] = crossover(kernels, ratios)
        print(f"{n:>14d} " + " ".join("     -" if r is None else f"{r:6.2f}" for r in ratios)
              + f"   {shown(dims, thresholds[str(n)])}", flush=True)
    return thresholds


def write_rule(device: torch.device, rule: dict, note: str) -> None:
    table = json.loads(Fn.CROSSOVER_FILE.read_text())
    table[device.type] = {**table.get(device.type, {}), **rule, "measured_on": note}  # keeps layouts not re-measured
    Fn.CROSSOVER_FILE.write_text(json.dumps(table, indent=2) + "\n")
    print(f"\nwrote the {device.type} rule to {Fn.CROSSOVER_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--layouts", nargs="+", default=["dense", "depthwise"], choices=["dense", "depthwise"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true",
                        help="store the measured crossover for this device type in ckconv/nn/fft_crossover.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}")
    rule = {}
    for dims in args.dims:
        for layout in args.layouts:
            key = f"{dims}d" + ("_depthwise" if layout == "depthwise" else "")
            rule[key] = sweep(dims, layout == "depthwise", args.batch, args.channels, args.repeats, device)
    print("\nmeasured rule: " + json.dumps(rule) + f"   (in use for {device.type}: "
          + json.dumps({k: v for k, v in Fn.crossover_rule(device.type).items() if k != "measured_on"}) + ")")
    if args.write:
        write_rule(device, rule, f"{name}, torch {torch.__version__}, batch {args.batch}, "
                                 f"{args.channels} -> {args.channels} channels, forward + backward")


if __name__ == "__main__":
    main()
