"""The training fast paths: torch.compile with growing kernels, channels-last 2D models, and the
per-device spatial/FFT rule of ``use_fft="auto"`` with the benchmark that derives it."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from ckconv import FlexConv
from ckconv.nn import functional as Fn
from config import compose_config, read_command, run_spec
from config.errors import ConfigError
from config.validation import config_warnings
from conftest import TINY_RUN
from engine.build import build_run_model, compile_model, input_meta, use_channels_last
from engine.experiment import run

ROOT = Path(__file__).resolve().parents[1]
TINY_1D = list(TINY_RUN)
TINY_2D = ["model=flexnet_tiny", "dataset=CIFAR10", "dataset_params.synthetic=true", "device=cpu"]


def tiny_model(overrides: list[str]) -> tuple[torch.nn.Module, tuple[int, ...]]:
    spec = run_spec(compose_config(overrides))
    meta = input_meta(spec)
    torch.manual_seed(0)
    return build_run_model(spec, meta), tuple(meta.input_shape)


def flexconvs(model) -> list[FlexConv]:
    return [m for m in model.modules() if isinstance(m, FlexConv)]


# --- train.compile -------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_fft", ["false", "true"])  # one path while the kernels grow
def test_compiled_model_trains_like_the_eager_one_while_kernels_grow(use_fft):
    model, shape = tiny_model([*TINY_1D, f"conv.use_fft={use_fft}"])
    eager = copy.deepcopy(model)
    compiled = compile_model(model, "eager")  # dynamo's graph capture without code generation: seconds
    x, y = torch.randn(16, *shape), torch.randint(0, 10, (16,))
    counters.clear()
    sizes = []
    for step in range(6):
        with torch.no_grad():
            for m in flexconvs(model) + flexconvs(eager):
                if step in (2, 4):
                    m.mask_params[:, 1] *= 1.5  # a wider mask crops a larger kernel, as in training
        losses = []
        for net in (compiled, eager):
            torch.manual_seed(step)  # the same dropout masks in both
            net.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-6)
        for a, b in zip(model.parameters(), eager.parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
        sizes.append(flexconvs(model)[0].kernel_size)
        if step == 1:
            graphs_before_growth = counters["stats"]["unique_graphs"]
    assert len(set(sizes)) >= 3, f"the kernels did not grow: {sizes}"
    # Dynamic shapes: new kernel sizes on the same path reuse the graphs.
    assert counters["stats"]["unique_graphs"] == graphs_before_growth


def test_compile_values_are_checked_and_documented():
    for value, expected in (("true", "inductor"), ("aot_eager", "aot_eager"), ("false", False)):
        from config.choices import parse_compile
        assert parse_compile(value) == expected
    with pytest.raises(ConfigError, match=r"train.compile='fast'.*inductor, aot_eager, eager"):
        read_command(["train.compile=fast"])


def test_a_compiled_run_trains_and_checkpoints_the_eager_weights(tmp_path):
    args = [*TINY_1D, "train.epochs=2", "train.compile=eager"]
    summary = run(read_command(args), tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not any("_orig_mod" in name for name in state), "the checkpoint holds the compiled wrapper's names"


@pytest.mark.slow
def test_an_inductor_compiled_run_trains(tmp_path):
    """The default backend generates and compiles C++ for every graph: a minute or more on a CPU."""
    args = [*TINY_1D, "train.epochs=2", "train.compile=true"]
    summary = run(read_command(args), tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2


# --- train.channels_last ---------------------------------------------------------------------------------
def test_channels_last_model_computes_the_same_outputs_and_gradients():
    model, shape = tiny_model([*TINY_2D, "net.dropout=0.0"])  # dropout masks follow the memory layout
    reference = copy.deepcopy(model)
    use_channels_last(model)
    x = torch.randn(4, *shape)
    for net in (model, reference):
        net.train()
        for m in flexconvs(net):
            m.use_fft = False  # the spatial path is the one whose memory layout matters
    out, expected = model(x), reference(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    # All gradients as one vector: single entries near 0 (biases in front of a BatchNorm) differ by rounding.
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    expected_grads = torch.cat([p.grad.flatten() for p in reference.parameters()])
    assert (grads - expected_grads).norm() <= 1e-4 * expected_grads.norm()
    conv_weights = [p for p in model.parameters() if p.dim() == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    assert set(model.state_dict()) == set(reference.state_dict())


def test_spatial_conv_keeps_a_channels_last_input_channels_last():
    x = torch.randn(2, 3, 9, 9).contiguous(memory_format=torch.channels_last)
    y = Fn.conv2d_same(x, torch.randn(4, 3, 5, 5))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_on_sequences_is_a_no_effect_note():
    notes = config_warnings(compose_config(["train.channels_last=true"]))
    assert any("train.channels_last=True has no effect" in note and "1D" in note for note in notes), notes
    assert not any("channels_last" in n for n in config_warnings(compose_config([*TINY_2D, "train.channels_last=true"])))


# --- use_fft="auto" per device type ----------------------------------------------------------------------
def test_the_auto_rule_is_read_from_the_device_table(monkeypatch):
    table = json.loads(Fn.CROSSOVER_FILE.read_text())
    assert {"1d", "2d", "1d_depthwise", "2d_depthwise"} <= set(table["cpu"])
    monkeypatch.setitem(Fn.CROSSOVER_TABLE, "cuda", {"1d": 100, "2d": 3, "1d_depthwise": 200})
    assert not Fn.prefer_fft((99,), "cuda") and Fn.prefer_fft((100,), "cuda")
    assert Fn.prefer_fft((3, 3), "cuda")
    assert not Fn.prefer_fft((199,), "cuda", depthwise=True) and Fn.prefer_fft((200,), "cuda", depthwise=True)
    assert not Fn.prefer_fft((2, 3), "cuda", depthwise=True)  # 2d_depthwise missing: the dense 2D rule
    monkeypatch.delitem(Fn.CROSSOVER_TABLE, "cuda")
    for size in ((20,), (21,), (7, 7), (9, 9), (11, 7)):  # a device type not measured: the CPU rule
        assert Fn.prefer_fft(size, "cuda") == Fn.prefer_fft(size, "cpu")


def benchmark(name: str):
    """A script of benchmarks/ as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_reads_the_crossover_off_its_ratios():
    crossover = benchmark("fft_crossover").crossover
    # The CPU table of the README: FFT loses at 17 taps and wins from 25 on (L=256) -> 21.
    assert crossover((5, 9, 13, 17, 25, 33), [0.72, 0.89, 0.72, 0.83, 1.94, 2.57]) == 21
    assert crossover((3, 5, 7, 9, 11), [0.40, 0.66, 0.86, 1.19, 1.25]) == 9      # halfway 8 -> odd 9
    assert crossover((5, 9, 13), [0.5, 1.1, 0.9]) == benchmark("fft_crossover").NEVER  # loses at the largest size
    assert crossover((5, 9, 13), [1.2, 1.5, 2.0]) == 5                           # never loses
    assert crossover((5, 9, 13, 17), [0.5, None, 0.9, 1.3]) == 15                # unmeasured sizes skipped


def test_writing_a_device_rule_keeps_the_other_layouts(tmp_path, monkeypatch):
    module = benchmark("fft_crossover")
    table = tmp_path / "fft_crossover.json"
    table.write_text(json.dumps({"about": "x", "cpu": {"1d": 21, "2d": 9, "1d_depthwise": 21}}))
    monkeypatch.setattr(module.Fn, "CROSSOVER_FILE", table)
    module.write_rule(torch.device("cpu"), {"1d_depthwise": 65}, "test machine")
    module.write_rule(torch.device("cuda"), {"2d": 5}, "a GPU")
    written = json.loads(table.read_text())
    assert written["cpu"] == {"1d": 21, "2d": 9, "1d_depthwise": 65, "measured_on": "test machine"}
    assert written["cuda"] == {"2d": 5, "measured_on": "a GPU"} and written["about"] == "x"


# --- the kernel states and the floor network of benchmarks/flexnet_vs_floor.py ----------------------------
@pytest.mark.parametrize("data_dim, horizon, length", [(2, 33, 32), (1, 1024, 1024)])
def test_crop_to_sets_the_kernel_size(data_dim, horizon, length):
    layer = FlexConv(2, 3, data_dim=data_dim, horizon=horizon)
    x = torch.randn(1, 2, *([length] * data_dim))
    for taps in ((3, 9, 17, 31, 33) if data_dim == 2 else (3, 64, 100, 1023, 1024, 2000)):
        layer.crop_to(taps)
        layer(x)
        assert layer.kernel_size == (min(taps, layer.grid_size),) * data_dim


def test_the_floor_network_computes_what_the_flexnet_computes():
    bench = benchmark("flexnet_vs_floor")
    model, shape = tiny_model(TINY_2D)
    x = torch.randn(2, *shape)
    assert bench.set_kernel_sizes(model, x, 9) == [(9, 9)]
    for use_fft in (False, True):
        floor = bench.floor_network(model, x, use_fft=use_fft)
        assert not any(isinstance(m, FlexConv) for m in floor.modules())
        fixed = [m for m in floor.modules() if isinstance(m, bench.FixedKernelConv)]
        assert fixed and all(tuple(m.weight.shape[2:]) == (9, 9) for m in fixed)
        with torch.no_grad():
            torch.testing.assert_close(floor.eval()(x), model.eval()(x), rtol=1e-4, atol=1e-4)


# --- spatial == FFT for whole paper models ------------------------------------------------------------
def preset_model(preset: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    spec = read_command([f"experiment={preset}", "device=cpu", "wandb.mode=disabled"]).spec
    meta = input_meta(spec)
    torch.manual_seed(0)
    return build_run_model(spec, meta), tuple(meta.input_shape)


def outputs_and_grads(model, x, y, use_fft):
    for layer in flexconvs(model):
        layer.use_fft = use_fft
    model.zero_grad()
    logits = model(x)
    if model.training:
        torch.nn.functional.cross_entropy(logits, y).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# FlexNet-7 in eval mode: its spatial training step with 33 x 33 kernels takes 15 s even for one image.
@pytest.mark.parametrize("preset, train", [("t3_cifar10_flexnet7", False), ("t1_smnist_flextcn2", True)])
def test_a_grown_paper_model_computes_the_same_on_the_fft_and_the_spatial_path(preset, train):
    """Presets run ``conv.use_fft=auto``: with every kernel grown to the whole grid (33 x 33 / 784 taps) the
    FFT path must give the spatial path's logits (and gradients) - the original's algorithm - to float
    tolerance."""
    model, shape = preset_model(preset)
    for layer in flexconvs(model):
        layer.grow_mask()
    torch.manual_seed(1)
    x, y = torch.randn(2, *shape), torch.tensor([3, 7])
    model.train(train)
    torch.manual_seed(2)  # the same dropout masks on both paths
    spatial, spatial_grads = outputs_and_grads(model, x, y, use_fft=False)
    torch.manual_seed(2)
    fft, fft_grads = outputs_and_grads(model, x, y, use_fft=True)
    assert all(layer.kernel_size == (layer.grid_size,) * layer.data_dim for layer in flexconvs(model))
    torch.testing.assert_close(fft, spatial, rtol=1e-4, atol=1e-5)
    assert fft_grads.keys() == spatial_grads.keys() and (len(fft_grads) > 0) == train
    # (biases in front of a BatchNorm get gradients of ~1e-7, rounding noise: an absolute floor covers them)
    floor = 1e-4 * max((grad.abs().max() for grad in spatial_grads.values()), default=0.0)
    for name, grad in spatial_grads.items():
        torch.testing.assert_close(fft_grads[name], grad, rtol=1e-3, atol=floor, msg=name)


# --- benchmarks/fast_default.py: what a preset costs ---------------------------------------------------------
def test_the_cost_benchmark_measures_a_preset_in_a_process_of_its_own():
    module = benchmark("fast_default")
    args = type("Args", (), {"threads": 1, "batch": 2, "steps": 1, "single_shot": 20.0})()
    timed = module.run_worker(ROOT, "flextcn2-init", "preset", args)
    assert timed["train_ms"] > 0 and timed["eval_ms"] > 0 and timed["kernel_sizes"]
    assert module.run_worker(ROOT, "flextcn2-init", "spatial", args, memory=True)["train_mb"] > 0


def test_the_cost_benchmark_reports_ratios_and_missed_goals(tmp_path, capsys, monkeypatch):
    module = benchmark("fast_default")
    measured = {"train_ms": 100.0, "eval_ms": 10.0, "train_mb": 50.0, "kernel_sizes": [[5, 5], [33, 33]]}
    results = {"flexnet7-grown": {"preset": measured,
                                  "spatial": dict(measured, train_ms=2000.0, eval_ms=20.0, train_mb=100.0),
                                  "baseline": dict(measured, train_ms=80.0)}}
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"args": {"batch": "64", "threads": "2", "steps": "3", "rounds": "2",
                                          "single_shot": "20.0"}, "results": results}))
    monkeypatch.setattr(sys, "argv", ["fast_default.py", "--table", str(saved)])
    module.main()
    printed = capsys.readouterr().out
    assert "| flexnet7-grown (largest 33x33) | 100 / 10, 50 | 2000 / 20, 100 | - | 80 / 10, 50 |" in printed
    assert "| 0.05, 0.50, 0.50 | -, - | 1.25, 1.00, 1.00 |" in printed
    assert "met   FlexNet-7 grown: preset train step / spatial: 0.05 (goal <= 0.1)" in printed
    assert "MISSED  FlexNet-7 grown: preset evaluation / spatial: 0.50 (goal <= 0.2)" in printed
    assert "MISSED  FlexNet-7 grown: preset train step / baseline: 1.25 (goal <= 1.1)" in printed
