"""Cross-resolution runs (run_crossres.py / engine.crossres) on tiny CIFAR-10 files written by the tests.

One reference run (8x8 -> 16x16, 1 source + 2 fine-tuning epochs, a few batches) is shared by the
module; the resume tests kill copies of it at chosen points and check that resuming continues in the
right phase and ends with the same weights.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere: repo root on path

from ckconv import CKConv, FlexConv, SRFConv  # noqa: E402
from engine import crossres, trainer  # noqa: E402
from config import ConfigError, read_command, run_spec, with_defaults  # noqa: E402
from engine.stored import stored_phase  # noqa: E402

SOURCE, TARGET = 8, 16
TINY = [
    "experiment=dev/crossres_cifar10_tiny", f"cross_res.source_res={SOURCE}", f"cross_res.target_res={TARGET}",
    "train.epochs=1", "cross_res.finetune_epochs=2", "train.batch_size=16", "train.limit_train_batches=2",
    "train.limit_eval_batches=1", "device=cpu", "wandb.mode=disabled", "dataset_params.num_workers=0",
    "net.dropout=0.0",
]


# --- tiny CIFAR-10 on disk -------------------------------------------------------------------------------------
def write_cifar10(root: Path, n_train: int = 40, n_test: int = 16) -> Path:
    """CIFAR-10's python pickles (rows: 1024 R, 1024 G, 1024 B values) under root/cifar-10-batches-py."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = n_train // 5
    for b in range(5):
        images = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        batch = {"batch_label": f"training batch {b + 1} of 5", "data": images,
                 "labels": (np.arange(per_batch) % 10).tolist()}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {"batch_label": "testing batch 1 of 1", "data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
            "labels": (np.arange(n_test) % 10).tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}, protocol=2))
    return root


@pytest.fixture(scope="module")
def offline_cifar(tmp_path_factory):
    """A data root with tiny CIFAR-10 files; torchvision's md5 check accepts them and nothing downloads."""
    patch = pytest.MonkeyPatch()
    patch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline (test) for {url}")

    patch.setattr(torchvision.datasets.utils, "download_url", offline)
    yield write_cifar10(tmp_path_factory.mktemp("cifar"))
    patch.undo()


def crossres_run(run_dir: Path, root: Path, *extra: str) -> dict:
    overrides = TINY + [f"dataset_params.root={root}", *extra]
    return crossres.run(read_command(overrides, entry="run_crossres"), run_dir)


def grids_and_norms(checkpoint_path: Path) -> set[tuple[int, float]]:
    state = torch.load(checkpoint_path, weights_only=True)["model"]
    return {(v["grid_size"], round(v["sampling_rate_norm"], 6)) for k, v in state.items() if k.endswith("_extra_state")}


def metric_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def reference(offline_cifar, tmp_path_factory):
    """One uninterrupted run: (run dir, returned summary)."""
    run_dir = tmp_path_factory.mktemp("reference")
    return run_dir, crossres_run(run_dir, offline_cifar)


# --- end to end -----------------------------------------------------------------------------------------------------
def test_end_to_end_writes_the_four_numbers(reference):
    run_dir, result = reference
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy"):
        assert 0.0 <= abs(summary[key]) <= 1.0 and summary[key] == result[key]
    assert summary["ootb_difference"] == pytest.approx(summary["ootb_accuracy"] - summary["source_accuracy"])
    assert summary["no_params"] > 0 and summary["status"] == "completed" and summary["phase"] == "done"
    assert summary["epochs_completed"] == 3 and summary["source_epochs_completed"] == 1
    assert summary["source_res"] == SOURCE and summary["target_res"] == TARGET
    # clean protocol: final = test accuracy at the best-validation fine-tuning epoch; the paper's maximum over
    # epochs is not known (the test set is evaluated only on epochs that improve validation)
    assert summary["final_accuracy"] == summary["finetune_test_accuracy"]
    assert summary["final_best_test_accuracy"] is None and summary["best_test_accuracy"] is None


def test_horizons_follow_the_resolutions(reference):
    run_dir, _ = reference
    # source: 9 taps at 8x8; fine-tuning: 17 taps at 16x16 with the kernel scaled by (8/16)^2
    assert grids_and_norms(run_dir / "source" / "checkpoints" / "best.pt") == {(SOURCE + 1, 1.0)}
    assert grids_and_norms(run_dir / "finetune" / "checkpoints" / "last.pt") == {(TARGET + 1, 0.25)}
    # A phase checkpoint stores the run's config, its phase and the model spec of its weights; the phase turns the
    # stored config into the phase's (resolution, anti-aliasing taps, epochs).
    source_ck = torch.load(run_dir / "source" / "checkpoints" / "last.pt", weights_only=True)
    target_ck = torch.load(run_dir / "finetune" / "checkpoints" / "last.pt", weights_only=True)
    assert (source_ck["crossres"]["phase"], target_ck["crossres"]["phase"]) == ("source", "finetune")
    source = stored_phase(run_spec(with_defaults(source_ck["config"])), source_ck)
    target = stored_phase(run_spec(with_defaults(target_ck["config"])), target_ck)
    assert source.data.resolution == SOURCE and target.data.resolution == TARGET
    assert source.loss.anti_aliasing.res == SOURCE + 1
    assert target.loss.anti_aliasing.res == TARGET + 1
    assert target.loop.epochs == 2 and target_ck["model_spec"]["kernel"]["sampling_rate_norm"] == 0.25
    assert source_ck["model_spec"]["conv"]["horizon"] == SOURCE + 1
    assert target_ck["model_spec"]["conv"]["horizon"] == TARGET + 1


def test_metrics_and_wandb_steps_continue_across_phases(reference):
    run_dir, _ = reference
    lines = metric_lines(run_dir)
    assert [(m["phase"], m["epoch"], m["step"]) for m in lines] == [("source", 1, 1), ("finetune", 1, 2),
                                                                    ("finetune", 2, 3)]


def test_phase_checkpoints_evaluate_with_run_experiment(reference, offline_cifar, tmp_path):
    """A phase checkpoint holds its phase: run_experiment's evaluation needs no resolution overrides."""
    from engine.experiment import run as run_experiment

    run_dir, result = reference
    overrides = ["train.do=False", "pretrained=True", f"pretrained_params.filepath={run_dir}/finetune/checkpoints/best.pt",
                 f"dataset_params.root={offline_cifar}", "device=cpu", "wandb.mode=disabled"]
    summary = run_experiment(read_command(overrides), tmp_path)
    assert summary["test_accuracy"] == result["final_accuracy"]


# --- resume -------------------------------------------------------------------------------------------------------
class Killed(Exception):
    """Stands in for the process being killed."""


@pytest.fixture
def epoch_log(monkeypatch):
    """Records (phase, epoch) of every trained epoch."""
    calls, phase = [], []
    original, original_fit = trainer.train_one_epoch, trainer.Trainer.fit

    def fit(self):
        phase[:] = [self.crossres.phase]  # the phase is a declared part of every checkpoint the trainer writes
        return original_fit(self)

    def counting(model, loader, optimizer, schedule, regularizers, loop, device, epoch, global_step, **kwargs):
        calls.append((phase[0], epoch + 1))
        return original(model, loader, optimizer, schedule, regularizers, loop, device, epoch, global_step, **kwargs)

    monkeypatch.setattr(trainer, "train_one_epoch", counting)
    monkeypatch.setattr(trainer.Trainer, "fit", fit)
    return calls


def assert_same_final_model(run_dir: Path, reference_dir: Path) -> None:
    ours = torch.load(run_dir / "finetune" / "checkpoints" / "last.pt", weights_only=True)["model"]
    theirs = torch.load(reference_dir / "finetune" / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(ours[key], value, msg=f"{key} differs after resuming")


def test_killed_after_source_resumes_without_retraining_it(reference, offline_cifar, tmp_path, monkeypatch, epoch_log):
    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(crossres, "evaluate_with", killed)  # dies at the out-of-the-box test
        with pytest.raises(Killed):
            crossres_run(tmp_path, offline_cifar)
    assert (tmp_path / "source" / "checkpoints" / crossres.SOURCE_MODEL).is_file()
    assert epoch_log == [("source", 1)]

    epoch_log.clear()
    result = crossres_run(tmp_path, offline_cifar, "train.resume=true")
    assert epoch_log == [("finetune", 1), ("finetune", 2)]  # no source epoch again
    reference_dir, expected = reference
    for key in ("source_accuracy", "ootb_accuracy", "final_accuracy"):
        assert result[key] == expected[key]
    assert_same_final_model(tmp_path, reference_dir)


def test_killed_during_finetuning_continues_there(reference, offline_cifar, tmp_path, monkeypatch, epoch_log):
    original_save = trainer.Trainer._save

    def save_then_die(self, name, state):
        original_save(self, name, state)
        if name == "last.pt" and state["crossres"]["phase"] == "finetune" and state["epoch"] == 1:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(trainer.Trainer, "_save", save_then_die)
        with pytest.raises(Killed):
            crossres_run(tmp_path, offline_cifar)
    assert epoch_log == [("source", 1), ("finetune", 1)]

    epoch_log.clear()
    ootb_calls = []
    original_evaluate = crossres.evaluate_with
    monkeypatch.setattr(crossres, "evaluate_with", lambda *a, **k: ootb_calls.append(1) or original_evaluate(*a, **k))
    # resume by path, from another directory: the run continues in its own directory
    result = crossres_run(tmp_path / "elsewhere", offline_cifar,
                          f"train.resume={tmp_path}/finetune/checkpoints/last.pt")
    assert epoch_log == [("finetune", 2)] and ootb_calls == []  # OOTB result came from the checkpoint
    reference_dir, expected = reference
    assert result["ootb_accuracy"] == expected["ootb_accuracy"] and result["final_accuracy"] == expected["final_accuracy"]
    assert_same_final_model(tmp_path, reference_dir)
    assert [(m["phase"], m["epoch"]) for m in metric_lines(tmp_path)] == [("source", 1), ("finetune", 1), ("finetune", 2)]


# --- one checkpoint at several resolutions -----------------------------------------------------------------------
def test_evaluate_checkpoint_at_several_resolutions(reference, offline_cifar, tmp_path):
    run_dir, result = reference
    overrides = ["cross_res.eval_resolutions=[8,12,16]", "pretrained=True",
                 f"pretrained_params.filepath={run_dir}/finetune/checkpoints/best.pt",
                 f"dataset_params.root={offline_cifar}", "device=cpu", "wandb.mode=disabled",
                 "dataset_params.num_workers=0"]
    summary = crossres.run(read_command(overrides, entry="run_crossres"), tmp_path)
    assert summary["trained_resolution"] == TARGET
    assert set(summary["accuracy_by_resolution"]) == {"8", "12", "16"}
    # at its own resolution the checkpoint scores what the fine-tuning reported
    assert summary["accuracy_by_resolution"]["16"] == result["final_accuracy"]
    assert [row["kernel_grid"] for row in summary["evaluations"]] == [9, 13, 17]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["accuracy_by_resolution"] == summary["accuracy_by_resolution"]
    assert (tmp_path / "accuracy_vs_resolution.png").stat().st_size > 1000
    assert (tmp_path / "accuracy_by_resolution.csv").read_text().startswith("resolution,accuracy,loss\n8,")


def test_source_model_at_source_resolution_gives_source_accuracy(reference, offline_cifar, tmp_path):
    run_dir, result = reference
    overrides = [f"cross_res.eval_resolutions=[{SOURCE}]", "pretrained=True",
                 f"pretrained_params.filepath={run_dir}/source/checkpoints/{crossres.SOURCE_MODEL}",
                 f"dataset_params.root={offline_cifar}", "device=cpu", "wandb.mode=disabled"]
    summary = crossres.run(read_command(overrides, entry="run_crossres"), tmp_path)
    assert summary["trained_resolution"] == SOURCE
    assert summary["accuracy_by_resolution"][str(SOURCE)] == result["source_accuracy"]


# --- the layer moves --------------------------------------------------------------------------------------------------
def test_move_to_resolution_resamples_the_same_continuous_kernel():
    torch.manual_seed(0)
    layer = CKConv(2, 3, data_dim=2, horizon=SOURCE + 1, kernel_no_hidden=8, kernel_no_layers=2)
    srf = SRFConv(2, 2)
    model = torch.nn.Sequential(layer, srf)
    with torch.no_grad():
        coarse = layer.kernel(torch.zeros(1, 2, SOURCE, SOURCE))
        grids = crossres.move_to_resolution(model, SOURCE, TARGET)
        fine = layer.kernel(torch.zeros(1, 2, TARGET, TARGET))
    assert grids == {"0": TARGET + 1} and layer.grid_size == TARGET + 1
    assert layer.sampling_rate_norm == pytest.approx((SOURCE / TARGET) ** 2)
    # every other point of the finer grid is a point of the coarse one: same kernel, scaled by (8/16)^2
    torch.testing.assert_close(fine[..., ::2, ::2], coarse * 0.25)
    assert srf.scale_sigma == pytest.approx(TARGET / SOURCE)


def test_rescaled_grid():
    assert crossres.rescaled_grid(17, 16, 32) == 33
    assert crossres.rescaled_grid(33, 32, 16) == 17
    assert crossres.rescaled_grid(33, 32, 24) == 25
    assert crossres.rescaled_grid(9, 8, 8) == 9


def test_flexconv_keeps_its_physical_extent():
    """The mask (in [-1, 1] coordinates) is unchanged, so the cropped kernel covers the same extent."""
    layer = FlexConv(1, 1, data_dim=2, horizon=17, kernel_no_hidden=8, kernel_no_layers=2, mask_init_value=0.3)
    layer(torch.zeros(1, 1, 16, 16))
    before = layer.kernel_size[0]
    crossres.move_to_resolution(layer, 16, 32)
    layer(torch.zeros(1, 1, 32, 32))
    assert (layer.kernel_size[0] - 1) == pytest.approx(2 * (before - 1), abs=2)


# --- configs of the phases ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset,source,target,resolutions", [
    ("CIFAR10", 16, 32, (16, None)),      # CIFAR-10 is 32x32: no resize at the target
    ("MNIST", 14, 28, (14, None)),        # MNIST / Fashion-MNIST are 28x28
    ("FashionMNIST", 28, 56, (None, 56)),
])
def test_phase_configs(dataset, source, target, resolutions):
    base = read_command(["experiment=t4_crossres_flexnet7_gabor", f"dataset={dataset}",
                         f"cross_res.source_res={source}", f"cross_res.target_res={target}", "train.augment=None",
                         "kernel.regularize_params.res_offset=2"], entry="run_crossres").spec
    src, tgt = crossres.phase_spec(base, "source"), crossres.phase_spec(base, "finetune")
    assert (src.data.resolution, tgt.data.resolution) == resolutions
    assert (src.model.conv.horizon, tgt.model.conv.horizon) == (source + 1, target + 1)
    assert (src.loss.anti_aliasing.res, tgt.loss.anti_aliasing.res) == (source + 3, target + 1)
    assert tgt.model.kernel.sampling_rate_norm == pytest.approx((source / target) ** 2)
    assert tgt.loop.epochs == base.cross_res.finetune_epochs and src.loop.epochs == base.loop.epochs
    assert base.model.conv.horizon == "same"  # the base spec is not modified


def test_conv_and_srf_phase_configs():
    conv = read_command(["experiment=t4_crossres_conv3"], entry="run_crossres").spec
    assert crossres.phase_spec(conv, "finetune").model.conv.horizon == conv.model.conv.horizon  # kernel size kept
    njet = read_command(["experiment=t4_crossres_njet"], entry="run_crossres").spec
    assert crossres.phase_spec(njet, "finetune").model.kernel.srf_scale == 2.0


def test_mnist_srf_synthetic_run(tmp_path):
    """MNIST (1 channel, 28x28 native) with N-Jet layers, 14 -> 28, on synthetic data."""
    overrides = ["experiment=dev/njet_cifar10_tiny", "dataset=MNIST", "train.augment=None", "cross_res.source_res=14",
                 "cross_res.target_res=28", "cross_res.finetune_epochs=1", "train.epochs=1", "train.batch_size=16",
                 "train.limit_train_batches=1", "train.limit_eval_batches=1", "dataset_params.synthetic=true",
                 "dataset_params.num_workers=0", "device=cpu", "wandb.mode=disabled"]
    summary = crossres.run(read_command(overrides, entry="run_crossres"), tmp_path)
    assert {"source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy", "no_params"} <= set(summary)
    state = torch.load(tmp_path / "finetune" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert {v["scale_sigma"] for k, v in state.items() if k.endswith("_extra_state")} == {2.0}


# --- errors ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,fragments", [
    (["cross_res.source_res=15", "cross_res.target_res=32"], ["cross_res.source_res=15", "even"]),
    (["cross_res.source_res=16", "cross_res.target_res=16"], ["cross_res.target_res=16", "must differ"]),
    (["cross_res.finetune_epochs=0"], ["cross_res.finetune_epochs=0", ">= 1"]),
    (["dataset=sMNIST", "net.type=TCN", "kernel.regularize=false", "train.augment=None"],
     ["dataset='sMNIST'", "CIFAR10", "MNIST"]),
    (["train.do=False"], ["train.do=False", "eval_resolutions"]),
    (["cross_res.eval_resolutions=[16,32]"], ["pretrained_params.filepath"]),
])
def test_errors_name_key_value_and_allowed(overrides, fragments, tmp_path):
    all_overrides = ["experiment=dev/crossres_cifar10_tiny", "device=cpu", "wandb.mode=disabled", *overrides]
    with pytest.raises(ConfigError) as info:
        crossres.run(read_command(all_overrides, entry="run_crossres"), tmp_path)  # raises at read time
    for fragment in fragments:
        assert fragment in str(info.value)


def test_resume_path_must_be_a_crossres_run(tmp_path):
    from engine.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="not a run_crossres.py run"):
        crossres.find_run_dir(str(tmp_path), tmp_path / "new")


# --- the command line ---------------------------------------------------------------------------------------------
def test_command_line_synthetic_smoke(tmp_path):
    """``run_crossres.py`` as documented, on synthetic data (no files), with the smallest sizes."""
    command = [sys.executable, "run_crossres.py", "experiment=dev/crossres_cifar10_tiny", "dataset_params.synthetic=true",
               f"cross_res.source_res={SOURCE}", f"cross_res.target_res={TARGET}", "train.batch_size=16",
               "train.limit_train_batches=1", "train.limit_eval_batches=1", "device=cpu", "wandb.mode=disabled",
               "dataset_params.num_workers=0", f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy", "no_params"} <= set(summary)
