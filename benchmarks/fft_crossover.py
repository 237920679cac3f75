"""Where does FFT convolution beat spatial convolution on this machine?

Times forward + backward (w.r.t. input and kernel) of one convolution, spatial vs FFT, side by side in one
run, over kernel sizes and input sizes, and prints the ratio spatial / FFT (> 1: FFT is faster). The
``use_fft="auto"`` rule in ``ckconv/nn/functional.py`` is read off this table.

    python benchmarks/fft_crossover.py            # both 1D (causal) and 2D
    python benchmarks/fft_crossover.py --dims 2 --batch 64 --channels 24
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
from ckconv.nn import functional as Fn  # noqa: E402


def time_fwd_bwd(fn, x, kernel, repeats: int) -> float:
    """Median seconds of ``fn(x, kernel).sum().backward()``."""
    times = []
    for i in range(repeats + 1):
        x.grad, kernel.grad = None, None
        start = time.perf_counter()
        fn(x, kernel).sum().backward()
        if i:  # the first call warms up (allocations, plan caches)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def sweep(dims: int, batch: int, channels: int, repeats: int) -> None:
    if dims == 1:
        pairs = (Fn.causal_conv1d, Fn.causal_fftconv1d)
        inputs = (256, 1024)
        kernels = (5, 9, 13, 17, 25, 33, 65, 129, 257)
    else:
        pairs = (Fn.conv2d_same, Fn.fftconv2d_same)
        inputs = (16, 32)
        kernels = (3, 5, 7, 9, 11, 13, 15, 17, 21, 25, 33)
    print(f"\n{dims}D, batch {batch}, {channels}->{channels} channels: ratio spatial/FFT time (fwd+bwd), >1 = FFT faster")
    print("input \\ kernel " + " ".join(f"{k:>6d}" for k in kernels))
    for n in inputs:
        row = []
        for k in kernels:
            if k > (2 * n - 1):
                row.append("     -")
                continue
            x = torch.randn(batch, channels, *([n] * dims), requires_grad=True)
            kernel = torch.randn(channels, channels, *([k] * dims), requires_grad=True)
            spatial = time_fwd_bwd(pairs[0], x, kernel, repeats)
            fft = time_fwd_bwd(pairs[1], x, kernel, repeats)
            row.append(f"{spatial / fft:6.2f}")
        print(f"{n:>14d} " + " ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dims in args.dims:
        sweep(dims, args.batch, args.channels, args.repeats)


if __name__ == "__main__":
    main()
