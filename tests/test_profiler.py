"""run_profiler.py / engine.profiler: synthetic inputs of the dataset's shape, no data on disk, profile.json."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere: repo root on path

from ckconv import FlexConv  # noqa: E402
from engine import profiler  # noqa: E402
from config import ConfigError, compose_config, read_command, run_spec  # noqa: E402

FAST = ["profile.n_batches=2", "profile.warmup_batches=0", "train.batch_size=2", "device=cpu", "wandb.mode=disabled"]
PRESET_1D = "experiment=dev/mnist1d_quick"        # FlexTCN, [1, 40] sequences
PRESET_2D = "experiment=dev/flexnet_cifar10_tiny"  # FlexNet, [3, 32, 32] images, horizon 33


def profile_run(tmp_path: Path, *overrides: str) -> dict:
    empty_root = tmp_path / "no_data"
    empty_root.mkdir(parents=True, exist_ok=True)
    run_dir = tmp_path / "run"
    report = profiler.run(read_command([*overrides, *FAST, f"dataset_params.root={empty_root}"], entry="run_profiler"),
                          run_dir)
    assert list(empty_root.iterdir()) == [], "the profiler must not read or download data"
    written = json.loads((run_dir / "profile.json").read_text())
    for key in ("no_params", "forward_ms", "forward_backward_ms", "samples_per_s", "kernel_sizes", "device",
                "input_shape", "peak_memory_mb", "peak_memory_kind"):
        assert key in written, key
    for mode in ("train", "eval"):
        assert written[mode]["forward_ms"] > 0 and written[mode]["forward_backward_ms"] > 0
        assert written[mode]["samples_per_s"] > 0
    assert written["forward_ms"] == written["train"]["forward_ms"]
    assert written["device"] == "cpu" and written["peak_memory_kind"] == "cpu_process_peak_rss"
    return written | {"report": report, "run_dir": run_dir}


def test_bench_1d_preset(tmp_path):
    report = profile_run(tmp_path, PRESET_1D)
    assert report["input_shape"] == [2, 1, 40]  # MNIST-1D: one channel, 40 steps
    assert report["no_params"] > 0 and report["mode"] == "bench"
    assert report["eval"]["kernel_cache"] is True and report["eval"]["forward_uncached_ms"] > 0
    assert report["kernel_sizes"] and all(len(size) == 1 for size in report["kernel_sizes"].values())


def test_profile_2d_preset_writes_table_csv_and_trace(tmp_path, capsys):
    report = profile_run(tmp_path, PRESET_2D, "profile.mode=profile", "net.no_hidden=4")
    assert report["input_shape"] == [2, 3, 32, 32]
    files = report["profile_files"]
    for name in ("timings_csv", "trace", "timings_eval_csv", "trace_eval"):
        assert Path(files[name]).parent == report["run_dir"] and Path(files[name]).is_file()
    with open(files["timings_csv"]) as handle:
        rows = list(csv.DictReader(handle))
    names = {row["name"] for row in rows}
    assert "train_step" in names and any("backward" in name.lower() for name in names)  # backward is profiled
    assert all(float(row["self_cpu_time_us"]) >= 0 for row in rows)
    trace = json.loads(Path(files["trace"]).read_text())
    assert trace["traceEvents"]
    out = capsys.readouterr().out
    assert "sorted by self CPU time" in out and "Self CPU" in out


def test_grow_masks_gives_full_size_kernels(tmp_path):
    # small grids keep the fully grown convolutions cheap on a CPU: 9x9 kernels on 8x8 inputs
    small_2d = (PRESET_2D, "conv.horizon=9", "profile.data_shape=8", "net.no_hidden=4")
    small = profile_run(tmp_path / "a", *small_2d)
    grown = profile_run(tmp_path / "b", *small_2d, "profile.grow_masks=true")
    assert small["input_shape"] == [2, 3, 8, 8]
    assert all(size[0] < 9 for size in small["kernel_sizes"].values())
    assert set(map(tuple, grown["kernel_sizes"].values())) == {(9, 9)}
    grown_1d = profile_run(tmp_path / "c", PRESET_1D, "profile.grow_masks=true")
    assert set(map(tuple, grown_1d["kernel_sizes"].values())) == {(40,)}  # horizon "same" = 40 steps


def test_input_meta_has_the_dataset_channels_and_sizes():
    cases = {("dataset=sMNIST",): (1, 784), ("dataset=MNIST",): (1, 28, 28), ("dataset=CIFAR10",): (3, 32, 32),
             ("dataset=sCIFAR10", "dataset_params.noise_padded=true"): (96, 1000),
             ("dataset=CIFAR10", "cross_res.resize='16,16'"): (3, 16, 16),      # as training would resize
             ("dataset=CIFAR10", "profile.data_shape=24"): (3, 24, 24),
             ("dataset=sMNIST", "profile.data_shape=100"): (1, 100)}            # 1D: the sequence length
    for overrides, shape in cases.items():
        assert profiler.profiled_meta(run_spec(compose_config(list(overrides)))).input_shape == shape, overrides
    with pytest.raises(ConfigError, match="sMNIST"):
        profiler.profiled_meta(run_spec(compose_config(["dataset=sMNIST", "cross_res.resize='16,16'"])))


@pytest.mark.parametrize("data_dim,shape,full", [(1, (2, 3, 50), (50,)), (2, (2, 3, 16, 16), (17, 17))])
def test_flexconv_grow_mask(data_dim, shape, full):
    torch.manual_seed(0)
    layer = FlexConv(3, 4, data_dim, "same", kernel_no_hidden=8, kernel_no_layers=2)
    x = torch.randn(*shape)
    layer.eval()
    with torch.no_grad():
        before = layer(x)
        assert layer.kernel_size != full
        layer.grow_mask()
        assert layer.kernel_size == full  # known before the next forward
        after = layer(x)  # the cached eval kernel must not be reused
    assert layer.kernel_size == full and not torch.equal(before, after)
    assert float(layer.mask_mean[0]) == (1.0 if data_dim == 1 else 0.0)
    layer.train()
    layer(x).sum().backward()  # still a normal trainable layer
    assert layer.mask_params.grad is not None


def test_grow_mask_without_mask_is_a_no_op():
    layer = FlexConv(1, 1, 2, 9, mask_use=False, kernel_no_hidden=4, kernel_no_layers=1)
    layer.grow_mask()
    assert layer.mask_params is None and layer.kernel_size == (9, 9)


def test_command_line_default_model(tmp_path):
    """``run_profiler.py`` with overrides, as documented; the default dataset dir is not needed."""
    command = [sys.executable, "run_profiler.py", *FAST, f"dataset_params.root={tmp_path / 'none'}",
               f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "profile.json").read_text())
    assert report["input_shape"] == [2, 1, 40] and report["net_type"] == "TCN"
    assert "forward" in done.stdout and "profile.json" in done.stdout
