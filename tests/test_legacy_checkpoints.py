"""Checkpoints written before checkpoints carried a model spec (format ``flexconv-checkpoint-v1``) still evaluate,
resume and plot.

The v1 files are made the way that version wrote them: the same entries, no ``model_spec``, an ``rng`` entry, and
in a cross-resolution checkpoint the PHASE's config (resolution, grid, epochs) instead of the run's.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from conftest import TINY_RUN

from config import read_command
from engine import crossres, experiment
from engine.checkpoint import CHECKPOINT_FORMAT, LEGACY_FORMAT, load_checkpoint
from experiments import plot_run

TINY = [*TINY_RUN, "train.limit_train_batches=2", "train.limit_eval_batches=2", "train.plot_every=-1"]
RESULTS = ("test_accuracy", "best_val_accuracy", "epochs_completed", "kernel_sizes")


def old_rng_entry() -> dict:
    """The ``rng`` entry v1 wrote into every checkpoint (and never read)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}


def to_v1(path, config: dict | None = None) -> None:
    """Rewrite a checkpoint of this version as v1 wrote it (``config``: what v1 stored there instead)."""
    state = load_checkpoint(path)
    assert state.pop("format") == CHECKPOINT_FORMAT and state.pop("model_spec")
    state = {"format": LEGACY_FORMAT, **state, "rng": old_rng_entry()}
    if config is not None:
        state["config"] = config
    torch.save(state, path)


@pytest.fixture(scope="module")
def v1_run(tmp_path_factory):
    """A one-epoch run whose checkpoints are then rewritten in the v1 format, and its summary."""
    run_dir = tmp_path_factory.mktemp("v1") / "run"
    summary = experiment.run(read_command([*TINY, "train.epochs=1"]), run_dir)
    for name in ("best.pt", "last.pt"):
        to_v1(run_dir / "checkpoints" / name)
    return run_dir, summary


def test_a_v1_checkpoint_evaluates_to_the_accuracy_its_run_logged(v1_run, tmp_path):
    run_dir, summary = v1_run
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["format"] == LEGACY_FORMAT
    evaluated = experiment.run(read_command(["train.do=False", "pretrained=True", "device=cpu", "wandb.mode=disabled",
                                             f"pretrained_params.filepath={run_dir / 'checkpoints' / 'best.pt'}",
                                             "train.limit_eval_batches=2", "train.plot_every=-1"]), tmp_path / "eval")
    assert evaluated["status"] == "evaluated"
    assert evaluated["test_accuracy"] == summary["test_accuracy"]
    assert evaluated["no_params"] == summary["no_params"]


def test_a_v1_run_resumes_to_the_result_of_an_uninterrupted_run(v1_run, tmp_path):
    run_dir, _ = v1_run
    resumed = experiment.run(read_command([*TINY, "train.epochs=2", f"train.resume={run_dir}"]), tmp_path / "other")
    straight = experiment.run(read_command([*TINY, "train.epochs=2"]), tmp_path / "straight")
    assert {key: resumed[key] for key in RESULTS} == {key: straight[key] for key in RESULTS}
    # The resumed run wrote its new checkpoints in this version's format, with the model spec.
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["model_spec"]["net"]["no_hidden"] == 8


def test_a_v1_checkpoint_plots(v1_run, tmp_path):
    run_dir, _ = v1_run
    to_v1_copy = tmp_path / "best.pt"
    to_v1_copy.write_bytes((run_dir / "checkpoints" / "best.pt").read_bytes())
    written = plot_run.plot(to_v1_copy, tmp_path / "figures")
    assert {path.name for path in written} >= {"kernels.png", "masks.png"}


def test_a_v1_cross_resolution_checkpoint_evaluates_at_its_phase_resolution(tmp_path):
    overrides = ["experiment=dev/crossres_cifar10_tiny", "dataset_params.synthetic=true", "cross_res.source_res=8",
                 "cross_res.target_res=16", "train.epochs=1", "cross_res.finetune_epochs=1", "train.batch_size=16",
                 "train.limit_train_batches=1", "train.limit_eval_batches=2", "device=cpu", "wandb.mode=disabled",
                 "dataset_params.num_workers=0", "train.plot_every=-1"]
    reader = read_command(overrides, entry="run_crossres")
    summary = crossres.run(reader, tmp_path / "run")
    best = tmp_path / "run" / "finetune" / "checkpoints" / "best.pt"
    run_config = load_checkpoint(best)["config"]
    # v1 stored the fine-tuning phase's config: its resolution, grid, epochs and kernel scales.
    finetune = crossres.phase_spec(reader.spec, "finetune")
    assert finetune.data.resolution == 16 and finetune.model.conv.horizon == 17
    kernel = finetune.model.kernel
    phase = {**run_config, "cross_res": {**run_config["cross_res"], "resize": "16,16"},
             "conv": {**run_config["conv"], "horizon": 17}, "train": {**run_config["train"], "epochs": 1},
             "kernel": {**run_config["kernel"], "sampling_rate_norm": kernel.sampling_rate_norm,
                        "srf": {"scale": kernel.srf_scale}}}
    to_v1(best, phase)
    evaluated = experiment.run(read_command(["train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                                             "device=cpu", "wandb.mode=disabled", "train.limit_eval_batches=2",
                                             "train.plot_every=-1"]), tmp_path / "eval")
    assert evaluated["test_accuracy"] == summary["final_accuracy"]
