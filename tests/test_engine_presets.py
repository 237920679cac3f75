"""Every preset composes and trains two steps on synthetic data through the engine; the published
commands build the published models and run when shortened to one epoch.

In-process (``read_command`` + ``engine.experiment.run``): a subprocess per preset would spend
most of its time importing torch. The true entry point is tested in test_run_experiment.py.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from config import CONFIG_DIR, ConfigError, compose_config, read_command
from engine.experiment import run

EXPERIMENT_DIR = CONFIG_DIR / "experiment"
PRESETS = sorted(str(p.relative_to(EXPERIMENT_DIR).with_suffix("")) for p in EXPERIMENT_DIR.rglob("*.yaml"))
# t4_crossres_* presets are run_crossres.py's (train at one resolution, test at another); here they only
# have to compose and validate for that entry point.
CROSSRES_PRESETS = [p for p in PRESETS if "crossres" in Path(p).name]
TRAIN_PRESETS = [p for p in PRESETS if p not in CROSSRES_PRESETS]

# Two training steps of batch 4, one evaluation batch, no W&B, CPU.
SMOKE = ["dataset_params.synthetic=true", "train.limit_train_batches=2", "train.limit_eval_batches=1",
         "train.epochs=1", "wandb.mode=disabled", "device=cpu", "train.batch_size=4",
         "train.plot_every=-1"]  # figures are tested in test_figures.py; drawing 50 models would double the time

# 33x33 kernels that never shrink (CKConv has no mask; Conv k=33 is fixed) on 32x32 maps cost ~20 s per
# preset for two steps at full width on 2 CPU cores. The default suite runs the same architecture (same
# conv/kernel/dataset settings) with one narrow block; the full-size runs are marked slow.
SHRUNK = {
    "t3_cifar10_ckcnn_magnet": ["net.no_blocks=1", "net.block_width_factors=[0.0]", "net.no_hidden=8"],
    "t3_cifar10_ckcnn_siren": ["net.no_blocks=1", "net.block_width_factors=[0.0]", "net.no_hidden=8"],
    "t3_cifar10_conv33": ["net.no_blocks=1", "net.block_width_factors=[0.0]", "net.no_hidden=8"],
    # STL-10: 96x96 maps, kernels on a 97 x 97 grid (15 x 15 at initialisation): ~2 min at full size.
    "t9_stl10_flexnet7": ["net.no_blocks=1", "net.block_width_factors=[0.0]", "net.no_hidden=8"],
    # Full size in the published-command tests below (FlexNet-5 on ImageNet-32) or as its own preset (ResNet-10
    # on STL-10, the same network with one block per stage instead of two).
    "t6_imagenet32_flexnet5": ["net.no_blocks=1", "net.block_width_factors=[0.0]", "net.no_hidden=8"],
    "t9_stl10_resnet18": ["net.type=OriginalResnet10"],
}
# Speech Commands, raw 16 kHz audio: kernels over 16000 steps cost 10-20 s for two steps. The default suite reads every
# 16th sample instead (the same network; the parameter counts are checked without training in
# test_sequence_datasets.py).
SHRUNK.update({preset: ["dataset_params.sr_train=16"] for preset in PRESETS if preset.startswith("ck_speech_raw_")})


def documented_param_count(preset: str) -> int | None:
    """The parameter count a paper preset records for itself (``paper.no_params``; None for dev presets)."""
    return compose_config([f"experiment={preset}"]).paper.no_params


def smoke_run(overrides: list[str], run_dir: Path) -> dict:
    summary = run(read_command(overrides), run_dir)
    # What every run must leave behind (DESIGN.md, Contracts).
    assert summary["status"] == "completed"
    on_disk = json.loads((run_dir / "summary.json").read_text())
    metric = "mse" if on_disk["dataset"] == "AddProblem" else "accuracy"  # a regression reports its error
    for key in ("no_params", f"best_val_{metric}", f"test_{metric}", f"best_test_{metric}", "epochs_completed",
                "kernel_sizes", "wall_time_s"):
        assert key in on_disk, key
    assert on_disk["epochs_completed"] == 1
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]
    last = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 2  # train.limit_train_batches=2 really limits the epoch
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    return on_disk


@pytest.mark.parametrize("preset", TRAIN_PRESETS)
def test_preset_trains_two_steps(preset, run_dir):
    overrides = [f"experiment={preset}", *SMOKE, *SHRUNK.get(preset, [])]
    summary = smoke_run(overrides, run_dir)
    expected = documented_param_count(preset)
    if expected is not None and preset not in SHRUNK:
        assert summary["no_params"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SHRUNK))
def test_heavy_preset_trains_two_steps_at_full_size(preset, run_dir):
    summary = smoke_run([f"experiment={preset}", *SMOKE], run_dir)
    assert summary["no_params"] == documented_param_count(preset)


# preset -> (net.type, conv.type, kernel.type, kernel.regularize_params.target or None: no penalty).
CROSSRES_ROWS = {
    "dev/crossres_cifar10_tiny": ("ResNet", "FlexConv", "MAGNet", "gabor"),
    "t4_crossres_ckcnn_siren": ("ResNet", "CKConv", "SIREN", None),
    "t4_crossres_conv3": ("ResNet", "Conv", "MAGNet", None),
    "t4_crossres_conv33": ("ResNet", "Conv", "MAGNet", None),
    "t4_crossres_flexnet7": ("ResNet", "FlexConv", "MAGNet", None),
    "t4_crossres_flexnet7_gabor": ("ResNet", "FlexConv", "MAGNet", "gabor"),
    "t4_crossres_flexnet7_gabor_mask": ("ResNet", "FlexConv", "MAGNet", "gabor+mask"),
    "t4_crossres_flexnet7_siren": ("ResNet", "FlexConv", "SIREN", None),
    "t4_crossres_njet": ("ResNet", "SRF", "MAGNet", None),
    "t4_crossres_resnet32": ("CIFARResNet32", "FlexConv", "MAGNet", None),
    "t4_crossres_resnet44": ("CIFARResNet44", "FlexConv", "MAGNet", None),
    "t7_crossres_imagenetk_flexnet5": ("ResNet", "FlexConv", "MAGNet", "gabor"),
    "t7_crossres_imagenetk_njet": ("ResNet", "SRF", "MAGNet", None),
    "t7_crossres_imagenetk_resnet32": ("CIFARResNet32", "FlexConv", "MAGNet", None),
}


def test_every_crossres_preset_is_a_known_row():
    assert sorted(CROSSRES_ROWS) == CROSSRES_PRESETS


@pytest.mark.parametrize("preset", CROSSRES_PRESETS)
def test_crossres_preset_composes(preset):
    """Table 4's protocol: CIFAR-10, 100 epochs at 16 x 16, then 100 epochs of fine-tuning at 32 x 32,
    selected on the test set (the dev preset: one epoch each, clean protocol); the model of its row, with
    the published parameter count. Table 7: the same on ImageNet-k (the stored 16 px set, then the 32 px one;
    synthetic here, which has the 1000 ImageNet classes: Imagenet-k reads its class count from the data)."""
    from engine.crossres import phase_spec
    from engine.build import build_run_model, input_meta
    from models import count_parameters

    extra = ["dataset_params.synthetic=true"] if preset.startswith("t7_") else []
    cfg = compose_config([f"experiment={preset}", "device=cpu", *extra])
    spec = read_command([f"experiment={preset}", "device=cpu", *extra], entry="run_crossres").spec  # validates
    paper = preset.startswith(("t4_", "t7_"))
    dataset = "Imagenet-k" if preset.startswith("t7_") else "CIFAR10"
    assert (cfg.dataset, cfg.protocol) == (dataset, "paper" if paper else "clean")
    assert (cfg.cross_res.source_res, cfg.cross_res.target_res) == (16, 32)
    assert (cfg.train.epochs, cfg.cross_res.finetune_epochs) == ((100, 100) if paper else (1, 1))
    net_type, conv_type, kernel_type, penalty = CROSSRES_ROWS[preset]
    assert (cfg.net.type, cfg.conv.type, cfg.kernel.type) == (net_type, conv_type, kernel_type)
    assert (cfg.kernel.regularize_params.target if cfg.kernel.regularize else None) == penalty
    source, finetune = phase_spec(spec, "source"), phase_spec(spec, "finetune")
    # cross_res.resize "16,16" for the source phase, "" (the native 32 x 32) for fine-tuning; ImageNet-k: the
    # stored 16 px set, then the 32 px one (its default).
    assert (source.data.resolution, finetune.data.resolution) == (16, None)
    assert (source.data.meta().input_shape, finetune.data.meta().input_shape) == ((3, 16, 16), (3, 32, 32))
    if conv_type != "Conv":  # continuous kernels follow the grid; a plain Conv keeps its kernel size
        assert (source.model.conv.horizon, finetune.model.conv.horizon) == (17, 33)
    # The model it trains has the parameter count the preset records, which rounds to the published one.
    if not paper:
        assert cfg.paper.no_params is None
        return
    no_params = count_parameters(build_run_model(source, input_meta(source)))
    assert no_params == cfg.paper.no_params
    if cfg.paper.params:  # e.g. "0.67M", "20.0M": equal at the published precision
        published = cfg.paper.params.removesuffix("M")
        assert round(no_params / 1e6, len(published.partition(".")[2])) == float(published)


@pytest.mark.parametrize("broken, message", [
    (["cross_res.target_res=16"], "cross_res.target_res=16 is invalid: must differ from cross_res.source_res"),
    (["cross_res.source_res=15"], "cross_res.source_res=15 is invalid: must be a positive even resolution"),
    (["cross_res.finetune_epochs=0"], "cross_res.finetune_epochs=0 is invalid"),
])
def test_broken_crossres_preset_is_rejected(broken, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_command(["experiment=t4_crossres_flexnet7", *broken], entry="run_crossres")


def test_unknown_crossres_preset_does_not_compose():
    with pytest.raises(Exception, match="t4_crossres_flexnet9"):
        compose_config(["experiment=t4_crossres_flexnet9"])


# --- the published commands -----------------------------------------------------------------------------
def original_command(preset: str, root: Path | None = None, script: str = "run_experiment.py") -> list[str]:
    """The authors' command as a preset records it (``paper.command``), with device=cuda -> device=cpu and, where
    it names a data folder (the authors' own, or the readme's placeholder), ``root`` instead."""
    words = shlex.split(compose_config([f"experiment={preset}"]).paper.command)
    assert words[:2] == ["python", script]
    assert "device=cuda" in words
    assert root is not None or not any(w.startswith("dataset_params.root=") for w in words)
    return ["device=cpu" if w == "device=cuda" else f"dataset_params.root={root}"
            if w.startswith("dataset_params.root=") else w for w in words[2:]]


PAPER_COMMANDS = {  # preset holding the command -> parameters of the original code's model
    "t3_cifar10_flexnet7": 671_650,   # FlexNet-7, CIFAR-10
    "t3_cifar10_njet": 698_503,       # N-Jet (SRF) with net.no_hidden=38
    "t8_mnist_flexnet7": 670_066,     # FlexNet-7 on MNIST, conv.horizon=29
    "t6_imagenet32_flexnet5": 498_596,  # FlexNet-5 on ImageNet-32, 1000 classes
    "t9_stl10_flexnet7": 671_650,     # FlexNet-7 on STL-10, conv.horizon=97
}
SLOW_COMMANDS = {"t9_stl10_flexnet7"}  # 96 x 96 images: minutes for one epoch of two steps at full size


@pytest.mark.parametrize("preset", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_COMMANDS else p
                                    for p in sorted(PAPER_COMMANDS)])
def test_paper_command_builds_the_published_model_and_runs_one_epoch(preset, run_dir):
    command = original_command(preset, root=run_dir.parent / "data")
    if preset == "t3_cifar10_njet":
        assert "net.no_hidden=38" in command
    # The command alone composes and validates (no preset involved).
    read_command(command)
    # Appending train.epochs=1 (shorter than the 5-epoch warm-up) still runs; only the smoke settings are
    # added (synthetic data has 64 training samples, so two steps need a batch below 64: 16 keeps it quick).
    smoke = ["dataset_params.synthetic=true", "train.limit_train_batches=2", "train.limit_eval_batches=1",
             "wandb.mode=disabled", "train.batch_size=16", "train.plot_every=-1"]
    overrides = [*command, *smoke, "train.epochs=1"]
    cfg = compose_config(overrides)
    assert cfg.train.scheduler_params.warmup_epochs == 5 and cfg.train.epochs == 1
    summary = smoke_run(overrides, run_dir)
    assert summary["no_params"] == PAPER_COMMANDS[preset]
    # Still inside the warm-up: W = 5 epochs x 2 steps; after 2 steps the next lr is lr * 3 / W.
    metrics = json.loads((run_dir / "metrics.jsonl").read_text())
    assert metrics["lr"] == pytest.approx(0.01 * 3 / 10)


# The three ImageNet-k commands of Table 7 (run_crossres.py): preset -> parameters of the original code's model.
CROSSRES_PAPER_COMMANDS = {
    "t7_crossres_imagenetk_flexnet5": 498_596,  # FlexNet-5 + aliasing regularisation, 1000 classes
    "t7_crossres_imagenetk_resnet32": 528_504,  # CIFARResNet-32, 1000 classes
    "t7_crossres_imagenetk_njet": 460_099,      # N-Jet FlexNet-5 with net.no_hidden=32
}


@pytest.mark.parametrize("preset", ["t6_imagenet32_flexnet5", "t9_stl10_flexnet7", *sorted(CROSSRES_PAPER_COMMANDS)])
def test_each_published_command_composes_verbatim_and_builds_the_original_model(preset, tmp_path):
    """The five commands of the original's ImageNet and STL-10 runs: composed as published (device=cpu, a data
    folder of this machine where they name one), validated for their script, with the original code's parameter
    count (the STL-10 command is also run, at full size, by the slow test above)."""
    from engine.build import build_run_model, input_meta
    from engine.crossres import phase_spec
    from models import count_parameters

    crossres = preset in CROSSRES_PAPER_COMMANDS
    command = original_command(preset, root=tmp_path, script="run_crossres.py" if crossres else "run_experiment.py")
    spec = read_command([*command, "dataset_params.synthetic=true"],
                        entry="run_crossres" if crossres else "run_experiment").spec
    assert spec.data.root == (str(tmp_path) if "dataset_params.root" in " ".join(command) else None)
    if crossres:
        source, target = phase_spec(spec, "source"), phase_spec(spec, "finetune")
        # The original replaced the dataset per phase: the stored 16 px set, then the 32 px one (no resizing).
        assert (spec.data.name, source.data.name, target.data.name) == ("Imagenet-k",) * 3
        assert (source.data.meta().input_shape, target.data.meta().input_shape) == ((3, 16, 16), (3, 32, 32))
        spec = source
    expected = {**PAPER_COMMANDS, **CROSSRES_PAPER_COMMANDS}[preset]
    assert count_parameters(build_run_model(spec, input_meta(spec))) == expected
    assert compose_config([f"experiment={preset}"]).paper.no_params == expected


@pytest.mark.parametrize("preset", [p if p == "t7_crossres_imagenetk_flexnet5" else pytest.param(p, marks=pytest.mark.slow)
                                    for p in sorted(CROSSRES_PAPER_COMMANDS)])
def test_imagenet_k_command_runs_both_phases_on_synthetic_data(preset, tmp_path):
    """The published run_crossres.py command, shortened to one epoch per phase, trains on the 16 px set, tests
    out of the box and fine-tunes on the 32 px set; top-5 accuracy is reported (train.report_top5_acc=True)."""
    from engine import crossres

    command = original_command(preset, root=tmp_path / "data", script="run_crossres.py")
    smoke = ["dataset_params.synthetic=true", "train.limit_train_batches=1", "train.limit_eval_batches=1",
             "wandb.mode=disabled", "train.batch_size=8", "train.plot_every=-1", "train.epochs=1",
             "cross_res.finetune_epochs=1"]
    summary = crossres.run(read_command([*command, *smoke], entry="run_crossres"), tmp_path / "run")
    assert summary["status"] == "completed" and summary["no_params"] == CROSSRES_PAPER_COMMANDS[preset]
    for key in ("source_accuracy", "ootb_accuracy", "ootb_difference", "final_accuracy", "source_accuracy_top5",
                "ootb_accuracy_top5", "final_accuracy_top5"):
        assert key in summary, key
    assert (summary["source_res"], summary["target_res"]) == (16, 32)
    source = torch.load(tmp_path / "run" / "source" / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    finetune = torch.load(tmp_path / "run" / "finetune" / "checkpoints" / "last.pt", map_location="cpu",
                          weights_only=True)
    if preset != "t7_crossres_imagenetk_resnet32":  # kernel grids: 17 taps at 16 px, 33 at 32 px
        assert source["model_spec"]["conv"]["horizon"] == 17 and finetune["model_spec"]["conv"]["horizon"] == 33
