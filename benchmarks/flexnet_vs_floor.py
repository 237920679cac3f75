"""How far is a FlexNet from the cost floor of a plain CNN with the same kernels?

The floor of a FlexNet is the same network with every FlexConv replaced by a fixed-weight convolution of
the same kernel size (``torch.nn.Conv*d``, spatially, or the FFT convolution, whichever is faster), i.e.
the cost of the convolutions alone; FlexConv adds one kernel-net evaluation per layer per step. For
FlexNet-7 (CIFAR-10 shapes) and FlexTCN-4 (sCIFAR10 shapes), at their initial kernel sizes and with kernels
grown to several sizes up to the whole horizon, this times side by side, interleaved, in one run:

* ``flex``: the model as configured but with ``conv.use_fft=auto`` (the fast path);
* ``flex_spatial``: the same weights convolved spatially (``conv.use_fft=False``, what the original does);
* ``floor_spatial`` / ``floor_fft``: the plain network with the FlexConv kernels frozen into weights;
* ``separable``: the separable model (``conv.type=SeparableFlexConv``) with the same kernel sizes;

each as a training step (forward + loss + backward + Adam step) and an evaluation forward (eval mode, the
kernel cache on). It prints the times and the ratios against the goals and writes everything as JSON.

    python benchmarks/flexnet_vs_floor.py                         # both models, 2 threads, batch 64 (~40 min on 2 cores)
    python benchmarks/flexnet_vs_floor.py --models flexnet7 --sizes 9 33 --repeats 3
    python benchmarks/flexnet_vs_floor.py --extras bf16 channels_last    # also time the training fast paths
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
from ckconv import FlexConv  # noqa: E402
from ckconv.nn.functional import convolve  # noqa: E402
from config import read_command  # noqa: E402
from engine.build import build_run_model, compile_model, input_meta, use_channels_last  # noqa: E402
from engine.trainer import autocast_context  # noqa: E402

MODELS = {  # name: (dense model group, separable model group, dataset, grown kernel sizes)
    "flexnet7": ("flexnet7", "flexnet7_separable", "CIFAR10", (9, 17, 33)),
    "flextcn4": ("flextcn4", "flextcn4_separable", "sCIFAR10", (256, 1024)),
}
# The goals the benchmark checks: (description, numerator, denominator, kernel state, mode, limit).
GOALS = (
    ("FlexNet-7 train step at init / floor", "flex", "floor", "init", "train", 1.5),
    ("FlexNet-7 eval (kernel cache) at init / floor", "flex", "floor", "init", "eval", 1.1),
    ("FlexNet-7 train step, 33x33 kernels / spatial", "flex", "flex_spatial", "33", "train", 0.1),
    ("separable FlexNet-7 train step, 33x33 / FlexNet-7", "separable", "flex", "33", "train", 0.35),
)


class FixedKernelConv(nn.Module):
    """A FlexConv's kernel frozen into an ordinary weight: the floor's convolution of the same size.

    Spatially it is ``torch.nn.functional.conv*d`` ("same" in 2D, causal in 1D, as FlexConv); ``use_fft``
    picks the FFT convolution instead.
    """

    def __init__(self, layer: FlexConv, example: torch.Tensor, use_fft: bool):
        super().__init__()
        with torch.no_grad():
            kernel = layer.kernel(example)
        self.weight = nn.Parameter(kernel.detach().clone())
        self.bias = nn.Parameter(layer.bias.detach().clone()) if layer.bias is not None else None
        self.use_fft = use_fft

    def forward(self, x):
        return convolve(x, self.weight, self.bias, self.use_fft)


def flexconv_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input each FlexConv sees in a forward of ``x`` (to sample its kernel at the right grid)."""
    seen, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, FlexConv):
            hooks.append(module.register_forward_pre_hook(lambda m, args, name=name: seen.setdefault(name, args[0])))
    with torch.no_grad():
        model.eval()(x)
    for hook in hooks:
        hook.remove()
    return seen


def floor_network(model: nn.Module, x: torch.Tensor, use_fft: bool) -> nn.Module:
    """``model`` with every FlexConv replaced by a :class:`FixedKernelConv` of its current kernel size."""
    floor = copy.deepcopy(model)
    inputs = flexconv_inputs(floor, x)
    for name, example in inputs.items():
        parent_name, _, child = name.rpartition(".")
        parent = floor.get_submodule(parent_name) if parent_name else floor
        setattr(parent, child, FixedKernelConv(parent.get_submodule(child), example, use_fft))
    return floor


def set_kernel_sizes(model: nn.Module, x: torch.Tensor, taps: int | None) -> list:
    """Crop every FlexConv of ``model`` to ``taps`` (None: leave the initial masks) and return the sizes."""
    flexconvs = [m for m in model.modules() if isinstance(m, FlexConv)]
    with torch.no_grad():
        model.eval()(x)  # resolves "same" horizons to a grid size
        if taps is not None:
            for layer in flexconvs:
                layer.crop_to(taps)
        model(x)
    return sorted({layer.kernel_size for layer in flexconvs})


@dataclass
class Candidate:
    """One model variant, timed as a training step and as an evaluation forward."""

    name: str
    model: nn.Module
    mixed_precision: bool = False
    compiled: nn.Module | None = None
    optimizer: torch.optim.Optimizer = field(init=False)

    def __post_init__(self):
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)

    def train_step(self, x, y) -> None:
        net = self.compiled if self.compiled is not None else self.model
        net.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(x.device, self.mixed_precision):
            loss = F.cross_entropy(net(x).float(), y)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def eval_forward(self, x) -> None:
        self.model.eval()
        with autocast_context(x.device, self.mixed_precision):
            self.model(x)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(candidates: list[Candidate], x, y, repeats: int, single_shot_s: float) -> dict[str, dict[str, float]]:
    """Median seconds per candidate and mode; rounds go over all candidates in turn (interleaved), so a
    slower or busier stretch of the machine affects all of them alike. A candidate whose warm-up step took
    more than ``single_shot_s`` (a fully grown kernel convolved spatially: minutes on a CPU) keeps its
    warm-up times instead of being repeated; at that length the first call's extra cost is negligible.
    A compiled candidate is always repeated after two warm-up steps (its first steps compile)."""
    times = {c.name: {"train": [], "eval": []} for c in candidates}
    repeated = []
    for c in candidates:  # warm-up: allocations, FFT plans, the eval kernel cache, compilation
        train_s, eval_s = timed(c.train_step, x, y), timed(c.eval_forward, x)
        if c.compiled is not None:  # the first steps compile (minutes): never a measurement
            print(f"  ({c.name}: first step {train_s:.0f} s, compiling)", flush=True)
            c.train_step(x, y)
            repeated.append(c)
        elif train_s > single_shot_s:
            times[c.name] = {"train": [train_s], "eval": [eval_s]}
            print(f"  ({c.name}: {train_s:.0f} s per step, timed once)", flush=True)
        else:
            repeated.append(c)
    for _ in range(repeats):
        for c in repeated:
            times[c.name]["train"].append(timed(c.train_step, x, y))
            times[c.name]["eval"].append(timed(c.eval_forward, x))
    return {name: {mode: statistics.median(values) for mode, values in modes.items()}
            for name, modes in times.items()}


def build(group: str, dataset: str, use_fft) -> tuple[nn.Module, tuple, int]:
    spec = read_command([f"model={group}", f"dataset={dataset}", f"conv.use_fft={use_fft}"]).spec
    meta = input_meta(spec)
    torch.manual_seed(0)
    return build_run_model(spec, meta), tuple(meta.input_shape), meta.num_classes


def benchmark_model(key: str, sizes: tuple[int, ...], batch: int, repeats: int, extras: list[str],
                    single_shot_s: float) -> list[dict]:
    dense_group, separable_group, dataset, default_sizes = MODELS[key]
    flex, shape, classes = build(dense_group, dataset, "auto")
    separable, _, _ = build(separable_group, dataset, "auto")
    x, y = torch.randn(batch, *shape), torch.randint(0, classes, (batch,))
    rows = []
    for taps in (None, *(sizes or default_sizes)):
        kernel_sizes = set_kernel_sizes(flex, x, taps)
        set_kernel_sizes(separable, x, taps)
        spatial = copy.deepcopy(flex)
        for layer in spatial.modules():
            if isinstance(layer, FlexConv):
                layer.use_fft = False
        candidates = [Candidate("flex", flex), Candidate("flex_spatial", spatial),
                      Candidate("floor_spatial", floor_network(flex, x, use_fft=False)),
                      Candidate("floor_fft", floor_network(flex, x, use_fft=True)),
                      Candidate("separable", separable)]
        candidates += extra_candidates(flex, extras, shape)
        state = "init" if taps is None else str(taps)
        print(f"\n{key} ({dataset}, batch {batch}), kernels {state}: sizes {kernel_sizes}", flush=True)
        result = measure(candidates, x, y, repeats, single_shot_s)
        result["floor"] = {mode: min(result["floor_spatial"][mode], result["floor_fft"][mode])
                           for mode in ("train", "eval")}
        rows.append({"model": key, "dataset": dataset, "kernels": state, "kernel_sizes": [list(s) for s in kernel_sizes],
                     "seconds": result})
        print_row(result)
    return rows


def extra_candidates(flex: nn.Module, extras: list[str], shape: tuple) -> list[Candidate]:
    """The training fast paths, each on a copy of ``flex`` (``--extras``)."""
    out = []
    for extra in extras:
        model = copy.deepcopy(flex)
        if extra == "bf16":
            out.append(Candidate("flex_bf16", model, mixed_precision=True))
        elif extra == "channels_last" and len(shape) == 3:
            use_channels_last(model)
            out.append(Candidate("flex_channels_last", model))
        elif extra == "compile":
            out.append(Candidate("flex_compiled", model, compiled=compile_model(model, "inductor")))
    return out


def print_row(result: dict) -> None:
    print(f"  {'variant':<20} {'train ms':>10} {'eval ms':>10} {'train/floor':>12} {'eval/floor':>11}")
    floor = result["floor"]
    for name, seconds in result.items():
        print(f"  {name:<20} {seconds['train'] * 1e3:10.1f} {seconds['eval'] * 1e3:10.1f} "
              f"{seconds['train'] / floor['train']:12.2f} {seconds['eval'] / floor['eval']:11.2f}", flush=True)


def check_goals(rows: list[dict]) -> list[dict]:
    by_state = {row["kernels"]: row["seconds"] for row in rows if row["model"] == "flexnet7"}
    results = []
    for text, numerator, denominator, state, mode, limit in GOALS:
        if state not in by_state:
            continue
        ratio = by_state[state][numerator][mode] / by_state[state][denominator][mode]
        results.append({"goal": text, "ratio": ratio, "limit": limit, "met": ratio <= limit})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="grown kernel sizes (taps per dimension; default: FlexNet-7 9 17 33, FlexTCN-4 256 1024)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after one warm-up round")
    parser.add_argument("--single-shot-s", type=float, default=20.0,
                        help="a variant whose warm-up step takes longer is timed once (default: 20 s)")
    parser.add_argument("--extras", nargs="*", default=[], choices=["bf16", "channels_last", "compile"],
                        help="also time FlexNet with these training fast paths")
    parser.add_argument("--json", default="flexnet_vs_floor.json", help="where to write the results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of {args.repeats} interleaved rounds")
    rows = []
    for key in args.models:
        rows += benchmark_model(key, tuple(args.sizes) if args.sizes else (), args.batch, args.repeats, args.extras,
                                args.single_shot_s)
    goals = check_goals(rows)
    if goals:
        print("\ngoals:")
        for goal in goals:
            print(f"  {goal['goal']:<52} {goal['ratio']:6.3f}  (<= {goal['limit']}: "
                  f"{'met' if goal['met'] else 'NOT met'})")
    Path(args.json).write_text(json.dumps({"torch": torch.__version__, "threads": args.threads, "batch": args.batch,
                                           "repeats": args.repeats, "rows": rows, "goals": goals}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
