"""Figures of what a network learned (engine/figures.py), the per-epoch layer statistics they read,
RunLogger.log_images and experiments/plot_run.py.

Models are tiny (a few channels, horizons of 9-17 taps), runs are 1 epoch of 2 batches on synthetic data.
"""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from omegaconf import OmegaConf

import ckconv
from ckconv import FlexConv, SRFConv
from config import compose_config, model_spec, read_command, run_spec
from conftest import TINY_RUN
from engine import crossres, figures
from engine.checkpoint import CHECKPOINT_FORMAT, LEGACY_FORMAT
from engine.experiment import run
from engine.logger import RunLogger
from engine.trainer import layer_statistics
from models import build_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import plot_run  # noqa: E402

MODEL_FILES = {figures.KERNELS, figures.MASKS, figures.SIZES_PER_LAYER}
SEQ = ["experiment=dev/mnist1d_quick", "net.no_hidden=4", "net.no_blocks=1", "kernel.no_hidden=8"]
IMG = ["experiment=dev/flexnet_cifar10_tiny", "net.no_hidden=4", "net.no_blocks=1", "net.block_width_factors=[0.0]",
       "kernel.no_hidden=8", "conv.horizon=9"]
# The tiny run (conftest.TINY_RUN) at width 4, as SEQ: 1 epoch of 2 batches.
RUN_1D = [*TINY_RUN, "net.no_hidden=4", "train.epochs=1", "train.limit_train_batches=2", "train.limit_eval_batches=1"]
# What each model draws (a CIFAR ResNet has no continuous-kernel layer: nothing).
CASES = {
    "flextcn_1d": ([*SEQ, "net.type=TCN", "conv.type=FlexConv"], 1, MODEL_FILES),
    "flexnet_2d": ([*IMG, "conv.type=FlexConv"], 2, MODEL_FILES),
    "ckconv_1d": ([*SEQ, "net.type=TCN", "conv.type=CKConv", "conv.horizon=17"], 1,
                  {figures.KERNELS, figures.SIZES_PER_LAYER}),
    "ckconv_2d": ([*IMG, "conv.type=CKConv"], 2, {figures.KERNELS, figures.SIZES_PER_LAYER}),
    "srf_2d": ([*IMG, "conv.type=SRF"], 2, {figures.SIZES_PER_LAYER, figures.SRF_SCALES}),
    "cifar_resnet": ([*IMG, "net.type=CIFARResNet20"], 2, set()),
}
INPUT_SHAPES = {1: (1, 40), 2: (3, 16, 16)}


def tiny_model(case: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    overrides, data_dim, _ = CASES[case]
    shape = INPUT_SHAPES[data_dim]
    torch.manual_seed(0)
    return build_model(model_spec(compose_config(overrides)), data_dim, shape[0], 10), shape


def pixels(path: Path) -> np.ndarray:
    """The RGB pixels of a PNG, checked to be a real picture: big enough and not one flat colour."""
    assert path.is_file() and path.stat().st_size > 0, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 150, image.shape
    rgb = image[..., :3]
    assert rgb.std() > 0.02, f"{path.name} is (nearly) one colour"
    return rgb


def flexconvs(model) -> list[FlexConv]:
    return [m for m in model.modules() if isinstance(m, FlexConv)]


def one_warning(captured) -> str:
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: could not draw figures: "), lines[0]
    return lines[0]


# --- figures of a model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_figure_that_applies_is_a_real_png(case, tmp_path):
    model, shape = tiny_model(case)
    written = figures.write_run_figures(model, tmp_path / "figures", input_shape=shape)
    assert {path.name for path in written} == CASES[case][2]
    assert {path.name for path in (tmp_path / "figures").glob("*")} == CASES[case][2]  # no .tmp left behind
    for path in written:
        pixels(path)


def test_kernels_are_the_layers_own_inside_the_crop_and_the_model_is_left_alone():
    model, shape = tiny_model("flexnet_2d")
    layer = flexconvs(model)[0]
    with torch.no_grad():
        layer.mask_params[:, 1] = torch.tensor([0.3, 0.2])  # a grown, non-square mask: crop 5 x 3 of 9 x 9
    model(torch.randn(2, *shape))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    view = next(v for v in figures.kernel_views(model) if v.layer is layer)
    n, (kh, kw) = layer.grid_size, view.crop
    assert kh > kw  # the non-square crop is seen
    sy, sx = (n - kh) // 2, (n - kw) // 2
    np.testing.assert_allclose(view.full[:, :, sy:n - sy, sx:n - sx], view.cropped, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(view.cropped, layer.kernel(torch.zeros(1, layer.in_channels, n, n)).detach().numpy(),
                               rtol=1e-5, atol=1e-7)
    assert model.training and layer.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included


def test_a_separable_layer_shows_its_equivalent_dense_kernel():
    separable = getattr(ckconv, "SeparableFlexConv", None)
    if separable is None:
        pytest.skip("this ckconv has no SeparableFlexConv")
    torch.manual_seed(0)
    layer = separable(3, 5, data_dim=2, horizon=9, kernel_no_hidden=8)
    with torch.no_grad():
        layer.mask_params[:, 1] = 0.3
    x = torch.randn(1, 3, 12, 12)
    expected = layer.dense_kernel(layer.kernel(x)).detach().numpy()
    view = figures.kernel_views(torch.nn.Sequential(layer))[0]
    assert view.cropped.shape == (5, 3, *view.crop) and view.full.shape == (5, 3, 9, 9)
    np.testing.assert_allclose(view.cropped, expected, rtol=1e-5, atol=1e-7)
    s = (9 - view.crop[0]) // 2
    np.testing.assert_allclose(view.full[:, :, s:9 - s, s:9 - s], view.cropped, rtol=1e-5, atol=1e-7)


def test_causal_kernels_keep_the_most_recent_taps():
    model, shape = tiny_model("flextcn_1d")
    model(torch.zeros(1, *shape))
    view = figures.kernel_views(model)[0]
    k = view.crop[0]
    assert k < view.horizon
    np.testing.assert_allclose(view.full[..., view.horizon - k:], view.cropped, rtol=1e-5, atol=1e-7)


def test_mask_and_size_figures_follow_the_masks(tmp_path):
    model, shape = tiny_model("flexnet_2d")
    first = figures.draw_model_figures(model, tmp_path / "before", input_shape=shape)
    for layer in flexconvs(model):
        layer.grow_mask()
    second = figures.draw_model_figures(model, tmp_path / "after", input_shape=shape)
    for name in (figures.MASKS, figures.SIZES_PER_LAYER, figures.KERNELS):
        a, b = pixels(tmp_path / "before" / name), pixels(tmp_path / "after" / name)
        assert a.shape == b.shape
        # The mask/kernel images and bars themselves: new titles and crop outlines alone change ~1% of the pixels.
        assert (np.abs(a - b).max(axis=-1) > 0.05).mean() > 0.1, name
    assert [p.name for p in first] == [p.name for p in second]


def test_unresolved_horizons_are_resolved_on_a_copy_or_left_out(tmp_path, capsys):
    model, shape = tiny_model("flextcn_1d")  # horizon "same": no grid before the first forward
    assert all(layer.grid_size == 0 for layer in flexconvs(model))
    assert figures.draw_model_figures(model, tmp_path / "none") == []
    assert "not seen an input yet" in capsys.readouterr().out
    written = figures.draw_model_figures(model, tmp_path / "resolved", input_shape=shape)
    assert {p.name for p in written} == MODEL_FILES
    assert all(layer.grid_size == 0 for layer in flexconvs(model))  # the caller's model is unchanged


# --- kernel sizes over training ----------------------------------------------------------------------------
def write_metrics(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_kernel_size_history_continues_over_phases_and_skips_broken_lines(tmp_path):
    records = [{"phase": "source", "epoch": 1, "kernel_sizes": {"a": [5, 5], "b": None}},
               {"phase": "source", "epoch": 2, "kernel_sizes": {"a": [7, 5], "b": [3, 3]}},
               '{"phase": "finetune", "epo',  # a killed process's last line
               {"phase": "finetune", "epoch": 1, "kernel_sizes": {"a": [13, 9], "b": [5, 5]}}]
    path = write_metrics(tmp_path / "metrics.jsonl", records)
    x, sizes, boundaries = figures.size_history(figures.read_metrics(path))
    assert x.tolist() == [1, 2, 3]
    assert boundaries == [(2.5, "finetune")]
    assert sizes["a"].tolist() == [[5, 5], [7, 5], [13, 9]]
    assert np.isnan(sizes["b"][0]).all() and sizes["b"][2].tolist() == [5, 5]
    out = figures.draw_kernel_size_curve(path, tmp_path / "curve.png")
    assert out == tmp_path / "curve.png"
    pixels(out)


def test_curve_layers_follow_the_model_not_the_alphabet():
    names = ["blocks.10.conv1", "stem.0", "blocks.2.conv1", "extra"]
    assert figures.depth_order(names, ["", "stem.0", "blocks.2.conv1", "blocks.10.conv1"]) == [
        "stem.0", "blocks.2.conv1", "blocks.10.conv1", "extra"]
    assert figures.depth_order(names) == ["blocks.2.conv1", "blocks.10.conv1", "extra", "stem.0"]


def test_kernel_size_curve_without_sizes_draws_nothing(tmp_path):
    path = write_metrics(tmp_path / "metrics.jsonl", [{"epoch": 1, "kernel_sizes": {}}, {"epoch": 2}])
    assert figures.draw_kernel_size_curve(path, tmp_path / "curve.png") is None
    assert figures.draw_kernel_size_curve(tmp_path / "missing.jsonl", tmp_path / "curve.png") is None
    assert not (tmp_path / "curve.png").exists()


# --- failures become one warning -----------------------------------------------------------------------------
def test_a_broken_backend_is_one_warning_and_no_figures(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no PNG today\nsecond line")

    monkeypatch.setattr(FigureCanvasAgg, "print_png", broken)
    model, shape = tiny_model("flexnet_2d")
    assert figures.write_run_figures(model, tmp_path / "figures", input_shape=shape) == []
    assert "RuntimeError: no PNG today" in one_warning(capsys.readouterr())
    assert list((tmp_path / "figures").glob("*")) == []  # no half-written files


def test_an_output_path_that_is_a_file_is_one_warning(tmp_path, capsys):
    blocker = tmp_path / "figures"
    blocker.write_text("not a folder")
    model, shape = tiny_model("flextcn_1d")
    assert figures.write_run_figures(model, blocker, write_metrics(tmp_path / "m.jsonl", []), input_shape=shape) == []
    one_warning(capsys.readouterr())


def test_a_failing_figure_keeps_the_ones_drawn_before_it(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("odd model")

    monkeypatch.setattr(figures, "draw_masks", broken)
    model, shape = tiny_model("flexnet_2d")
    written = figures.write_run_figures(model, tmp_path, input_shape=shape)
    assert [p.name for p in written] == [figures.KERNELS]
    assert "ValueError: odd model" in one_warning(capsys.readouterr())


# --- per-epoch statistics ------------------------------------------------------------------------------------
def test_layer_statistics_record_mask_means_and_srf_scales():
    model, shape = tiny_model("flextcn_1d")
    model(torch.zeros(1, *shape))
    layer = flexconvs(model)[1]
    with torch.no_grad():
        layer.mask_params[0, 0] = 0.25
    stats = json.loads(json.dumps(layer_statistics(model)))  # JSON-able
    names = [name for name, m in model.named_modules() if isinstance(m, FlexConv)]
    assert set(stats) == {"kernel_sizes", "mask_sigmas", "mask_means"}
    assert sorted(stats["mask_means"]) == sorted(names) == sorted(stats["kernel_sizes"])
    assert stats["mask_means"][names[1]] == [0.25] and stats["mask_means"][names[0]] == [1.0]
    assert stats["mask_sigmas"][names[0]] == [pytest.approx(0.075, abs=1e-4)]  # unchanged key

    srf, _ = tiny_model("srf_2d")
    layers = {name: m for name, m in srf.named_modules() if isinstance(m, SRFConv)}
    next(iter(layers.values())).scale.data.fill_(1.0)  # sigma = 2 ** scale
    stats = layer_statistics(srf)
    assert set(stats) == {"kernel_sizes", "srf_scales"}
    assert list(stats["srf_scales"].values())[:2] == [2.0, 1.0] and set(stats["srf_scales"]) == set(layers)


# --- W&B images ----------------------------------------------------------------------------------------------
class FakeRun:
    def __init__(self, fail: bool = False):
        self.fail, self.calls = fail, []

    def log(self, data, step=None):
        if self.fail:
            raise ConnectionError("W&B is down")
        self.calls.append((data, step))


def test_log_images_sends_wandb_images_when_wandb_is_on(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Image=lambda path: ("image", path)))
    png = tmp_path / "kernels.png"
    png.write_bytes(b"png")
    logger = RunLogger(tmp_path / "run")
    logger.wandb_run = FakeRun()
    logger.log_images({"figures/kernels": png, "figures/masks": tmp_path / "missing.png"}, step=3)
    assert logger.wandb_run.calls == [({"figures/kernels": ("image", str(png))}, 3)]


def test_log_images_is_a_no_op_without_wandb_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` would raise: it must not be reached
    off = RunLogger(tmp_path / "off")
    off.log_images({"figures/kernels": tmp_path / "kernels.png"}, step=1)
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Image=lambda path: path))
    png = tmp_path / "kernels.png"
    png.write_bytes(b"png")
    failing = RunLogger(tmp_path / "failing")
    failing.wandb_run = FakeRun(fail=True)
    with pytest.warns(UserWarning, match="W&B call failed"):
        failing.log_images({"figures/kernels": png}, step=1)
    assert failing.wandb_run is None  # W&B off for the rest of the run, the run goes on


# --- the runs draw their own figures ---------------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    RUN_1D,  # the default FlexTCN on MNIST-1D
    ["experiment=dev/flexnet_cifar10_tiny", "dataset_params.synthetic=true", "dataset_params.num_workers=0",
     "train.epochs=2", "train.limit_train_batches=2", "train.limit_eval_batches=1", "train.plot_every=1",
     "wandb.mode=disabled", "device=cpu"],  # a 2D FlexNet, with figures after every epoch too
], ids=["flextcn_1d", "flexnet_2d"])
def test_a_run_writes_its_figures(overrides, tmp_path, monkeypatch):
    drawn = []
    real = figures.write_run_figures
    monkeypatch.setattr(figures, "write_run_figures", lambda *a, **k: drawn.append(a[1]) or real(*a, **k))
    run(read_command(overrides), tmp_path / "run")
    expected = MODEL_FILES | {figures.SIZES_OVER_TRAINING}
    assert {p.name for p in (tmp_path / "run" / "figures").glob("*.png")} == expected
    for name in expected:
        pixels(tmp_path / "run" / "figures" / name)  # a real, non-blank image
    epochs = int(compose_config(overrides).train.epochs) if "train.plot_every=1" in overrides else 0
    assert len(drawn) == epochs + 1  # every epoch (plot_every=1), and at the end


# --- plot_run.py ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real 1-epoch FlexTCN run (synthetic MNIST-1D): metrics.jsonl and checkpoints/{best,last}.pt. It draws
    no figures itself (train.plot_every=-1), so the ones found afterwards are plot_run.py's."""
    run_dir = tmp_path_factory.mktemp("plot") / "run"
    overrides = [*RUN_1D, "train.plot_every=-1"]
    run(read_command(overrides), run_dir)
    assert not (run_dir / "figures").exists()
    return run_dir


def test_plot_run_draws_a_run_directory(trained_run, capsys):
    assert plot_run.main([str(trained_run)]) == 0
    expected = MODEL_FILES | {figures.SIZES_OVER_TRAINING}
    assert {p.name for p in (trained_run / "figures").glob("*.png")} == expected
    for name in expected:
        pixels(trained_run / "figures" / name)
    assert "checkpoints/best.pt" in capsys.readouterr().out


def test_plot_run_draws_one_checkpoint_into_out(trained_run, tmp_path):
    assert plot_run.main([str(trained_run / "checkpoints" / "last.pt"), "--out", str(tmp_path / "out")]) == 0
    # inside a run directory the checkpoint gets the run's curve too
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == MODEL_FILES | {figures.SIZES_OVER_TRAINING}


def test_plot_run_finds_cross_resolution_checkpoints_and_resolution(trained_run, tmp_path):
    crossres = tmp_path / "crossres"
    (crossres / "finetune" / "checkpoints").mkdir(parents=True)
    (crossres / "finetune" / "checkpoints" / "last.pt").write_bytes(
        (trained_run / "checkpoints" / "last.pt").read_bytes())
    assert plot_run.find_checkpoint(crossres) == crossres / "finetune" / "checkpoints" / "last.pt"
    assert plot_run.run_dir_of(crossres / "finetune" / "checkpoints" / "last.pt") is None  # no metrics.jsonl
    lines = figures.read_metrics(trained_run / "metrics.jsonl")
    write_metrics(crossres / "metrics.jsonl", [{**line, "phase": phase} for phase in ("source", "finetune")
                                               for line in lines])
    assert plot_run.run_dir_of(crossres / "finetune" / "checkpoints" / "last.pt") == crossres.resolve()
    assert plot_run.main([str(crossres)]) == 0
    assert {p.name for p in (crossres / "figures").glob("*.png")} == MODEL_FILES | {figures.SIZES_OVER_TRAINING}


@pytest.mark.parametrize("resize, side", [("", 32), ("16,16", 16)])
def test_plot_run_rebuilds_at_the_training_resolution(resize, side):
    cfg = compose_config([*IMG, "conv.horizon=same", f"cross_res.resize='{resize}'"])
    model = build_model(model_spec(cfg), 2, 3, 10)
    model(torch.zeros(1, 3, side, side))  # "same" horizons resolve to side + 1 taps (stored in the weights)
    # A checkpoint of the earlier format: no model spec, the model is read from the stored config.
    stored = {"format": LEGACY_FORMAT, "config": OmegaConf.to_container(cfg, resolve=True), "model": model.state_dict()}
    rebuilt, input_shape = plot_run.rebuild_model(stored, Path("x.pt"))
    assert input_shape == (3, side, side)
    assert [m.grid_size for m in flexconvs(rebuilt)] == [side + 1] * len(flexconvs(model))
    # This format: the model is the stored model spec (here the config holds only the data keys; its model
    # keys would be the defaults, a FlexTCN whose weights do not fit).
    stored = {"format": CHECKPOINT_FORMAT, "config": {"dataset": "CIFAR10", "cross_res": {"resize": resize}},
              "model_spec": model_spec(cfg).to_dict(), "model": model.state_dict()}
    rebuilt, input_shape = plot_run.rebuild_model(stored, Path("x.pt"))
    assert input_shape == (3, side, side)
    assert [m.grid_size for m in flexconvs(rebuilt)] == [side + 1] * len(flexconvs(model))


@pytest.mark.parametrize("phase, side", [("source", 8), ("finetune", 16)])
def test_plot_run_rebuilds_a_crossres_checkpoint_at_its_phase_resolution(phase, side):
    """A run_crossres.py checkpoint stores the run's config and its phase: drawn at the phase's resolution."""
    base = run_spec(compose_config(["experiment=dev/crossres_cifar10_tiny", "net.no_hidden=4", "net.no_blocks=1",
                                    "net.block_width_factors=[0.0]", "kernel.no_hidden=8", "cross_res.source_res=8",
                                    "cross_res.target_res=16"]))
    spec = crossres.phase_spec(base, phase)
    model = build_model(spec.model, 2, 3, 10)
    model(torch.zeros(1, 3, side, side))
    stored = {"format": CHECKPOINT_FORMAT, "config": dict(base.config), "model_spec": spec.model.to_dict(),
              "model": model.state_dict(), "crossres": {"phase": phase, "config": dict(base.config)}}
    rebuilt, input_shape = plot_run.rebuild_model(stored, Path("x.pt"))
    assert input_shape == (3, side, side)
    assert [m.grid_size for m in flexconvs(rebuilt)] == [side + 1] * len(flexconvs(model))


def test_plot_run_exits_1_with_one_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert plot_run.main([str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err.startswith(f"error: no checkpoint in '{tmp_path / 'empty'}'")
    # As a script, from another folder (the project root is found from the script's own path):
    missing = tmp_path / "missing"
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "plot_run.py"), str(missing)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"error: '{missing}' is neither a run directory nor a checkpoint file\n"
