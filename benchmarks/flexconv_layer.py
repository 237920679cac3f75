"""Forward + backward time of one FlexConv layer with a fully grown kernel: spatial vs FFT vs auto.

The issue's reference case: FlexConv 24 -> 24 on a 64 x 24 x 32 x 32 input with horizon 33 and the mask
grown to the whole 33 x 33 grid (the cost of a trained model's late layers). Prints median times and the
ratios to the spatial path, measured side by side in one run.

    python benchmarks/flexconv_layer.py
    python benchmarks/flexconv_layer.py --batch 16 --size 64 --horizon 65
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
from ckconv import FlexConv  # noqa: E402


def median_fwd_bwd(layer, x, repeats: int) -> float:
    times = []
    for i in range(repeats + 1):
        layer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        layer(x).sum().backward()
        if i:  # the first call warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=24)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--horizon", type=int, default=33)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size)
    reference = FlexConv(args.channels, args.channels, data_dim=2, horizon=args.horizon)
    reference.grow_mask()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FlexConv {args.channels}->{args.channels}, "
          f"input {tuple(x.shape)}, kernel {reference.kernel_size}")
    results = {}
    for use_fft in (False, True, "auto"):
        layer = FlexConv(args.channels, args.channels, data_dim=2, horizon=args.horizon, use_fft=use_fft)
        layer.load_state_dict(reference.state_dict())
        results[use_fft] = median_fwd_bwd(layer, x, args.repeats)
    spatial = results[False]
    for use_fft, seconds in results.items():
        print(f"  use_fft={str(use_fft):<5}  {seconds * 1000:8.1f} ms   spatial/this = {spatial / seconds:5.2f}")


if __name__ == "__main__":
    main()
