"""The training engine in-process: run files, resume, checkpoint evaluation and errors, schedules,
optimiser groups, divergence.

Runs use a tiny FlexTCN on synthetic MNIST-1D (64 training samples, batch 16: 4 steps per epoch), so a
3-epoch run takes about a second on a CPU.
"""
from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import pytest
import torch

import engine.checkpoint
import engine.trainer
from ckconv import FlexConv
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from config import ConfigError, read_command
from conftest import TINY_RUN
from engine.experiment import run
from engine.optim import COSINE_ETA_MIN, build_optimizer, build_schedule
from engine.specs import OptimSpec
from engine.trainer import NonFiniteLossError
from models import build_model

TINY = list(TINY_RUN)
STEPS_PER_EPOCH = 4  # 64 synthetic training samples / batch 16
# Parameters of the TINY FlexTCN, counted by hand: per FlexConv a MAGNet kernel net of 3 Gabor filters
# (gamma, mu, weight, bias: 4 x 8 = 32 each), 2 hidden 8 x 8 linears (72 each) and an output linear to
# C_out x C_in values, plus bias (8) and mask (2): 96 + 144 + 72 + 10 = 322 for 1 -> 8 and
# 96 + 144 + 576 + 10 = 826 for 8 -> 8; two BatchNorms 32, the 1x1 shortcut 16, the 8 -> 10 readout 90.
TINY_PARAMS = 322 + 826 + 32 + 16 + 90  # 1286

# Keys of metrics.jsonl / summary.json that are timings or paths, not results.
NOT_RESULTS = {"epoch_time_s", "wall_time_s", "process_time_s", "run_dir"}


def train(run_dir: Path, *overrides: str, base=TINY) -> dict:
    """One run_experiment.py run in-process (what the entry point does after Hydra composes)."""
    args = [*base, *overrides]
    return run(read_command(args), run_dir)


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in NOT_RESULTS} for line in lines]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def results(run_dir: Path) -> dict:
    return {k: v for k, v in summary(run_dir).items() if k not in NOT_RESULTS}


def weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if torch.is_tensor(a[name]):
            assert torch.equal(a[name], b[name]), name
        else:  # layer extra state (grid size, sampling-rate norm)
            assert a[name] == b[name], name


# --- run files ---------------------------------------------------------------------------------------------
def test_run_writes_metrics_summary_and_checkpoints(run_dir):
    result = train(run_dir, "train.epochs=2", "test.before_train=true")
    lines = metrics(run_dir)
    assert [line["epoch"] for line in lines] == [1, 2]  # one object per epoch
    for line in lines:
        for key in ("loss_train", "accuracy_train", "accuracy_val", "lr", "kernel_sizes"):
            assert key in line, key
    on_disk = summary(run_dir)
    assert on_disk["status"] == "completed" and on_disk["epochs_completed"] == 2
    assert on_disk["no_params"] == TINY_PARAMS
    assert on_disk["best_val_accuracy"] == max(line["accuracy_val"] for line in lines)
    # protocol=clean: the test set is evaluated at the epochs that improve validation (epoch 1 always does);
    # the test accuracy reported is that of the best-validation epoch, and there is no best over epochs.
    assert "accuracy_test" in lines[0]
    assert on_disk["test_accuracy"] == lines[on_disk["best_epoch"] - 1]["accuracy_test"]
    assert on_disk["best_test_accuracy"] is None
    assert set(on_disk["kernel_sizes"]) == {"blocks.0.conv1", "blocks.0.conv2"}
    assert on_disk["wall_time_s"] > 0
    assert 0 <= on_disk["test_accuracy_before_train"] <= 1  # test.before_train (an original key) is honoured
    assert result["test_accuracy"] == on_disk["test_accuracy"]
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and last["global_step"] == 2 * STEPS_PER_EPOCH
    # The checkpoint holds the resolved config: enough to evaluate or resume without the command.
    assert last["config"]["net"]["no_hidden"] == 8 and last["config"]["dataset_params"]["synthetic"] is True
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == on_disk["best_epoch"]


def test_default_experiment_on_real_mnist1d(run_dir):
    """`python run_experiment.py` with no arguments: FlexTCN on MNIST-1D (real data, generated offline
    when missing), device=auto; shortened to a few batches."""
    result = train(run_dir, "train.epochs=1", "train.limit_train_batches=3", "train.limit_eval_batches=2", base=[])
    assert result["status"] == "completed" and result["dataset"] == "MNIST1D"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["global_step"] == 3


# --- resume ------------------------------------------------------------------------------------------------
class Killed(RuntimeError):
    """Stands in for a SIGKILL / pre-emption in the middle of an epoch."""


class DyingLoader:
    """The training loader, dying after ``after`` batches."""

    def __init__(self, loader, after: int):
        self.loader, self.after = loader, after

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index == self.after:
                raise Killed("killed mid-epoch")
            yield batch


def kill_during_epoch(monkeypatch, epoch: int, after_batches: int = 2) -> None:
    """Make the run die in the middle of (0-based) ``epoch``, after some optimiser steps of it."""
    real = engine.trainer.train_one_epoch

    def train_one_epoch(model, loader, *args, **kwargs):
        if args[5] == epoch:  # (optimizer, schedule, regularizers, loop, device, epoch, ...)
            loader = DyingLoader(loader, after_batches)
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr(engine.trainer, "train_one_epoch", train_one_epoch)


def assert_same_run(a: Path, b: Path) -> None:
    assert_same_weights(weights(a / "checkpoints" / "last.pt"), weights(b / "checkpoints" / "last.pt"))
    assert_same_weights(weights(a / "checkpoints" / "best.pt"), weights(b / "checkpoints" / "best.pt"))
    assert metrics(a) == metrics(b)
    assert results(a) == results(b)


def test_killed_run_resumed_equals_uninterrupted_run(tmp_path, monkeypatch):
    """Default schedule (warm-up + per-iteration cosine), dropout on: the RNG and schedule state must
    come back exactly."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    train(reference, "train.epochs=3")

    with monkeypatch.context() as patch:
        kill_during_epoch(patch, epoch=2)
        with pytest.raises(Killed):
            train(killed, "train.epochs=3")
    # Nothing of the two finished epochs is lost; the half epoch is redone.
    assert load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"] == 2
    assert [line["epoch"] for line in metrics(killed)] == [1, 2]

    # train.resume=true with the same run directory (hydra.run.dir=<old run dir>).
    result = train(killed, "train.epochs=3", "train.resume=true")
    assert result["epochs_completed"] == 3 and result["status"] == "completed"
    assert_same_run(reference, killed)


def test_killed_run_with_augmentation_in_worker_processes_resumes_exactly(tmp_path, monkeypatch):
    """2D FlexNet with random crops/flips done in a DataLoader worker process and dropout."""
    base = [*FLEXNET_TINY, "dataset_params.num_workers=1", "train.epochs=2"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    train(reference, base=base)
    with monkeypatch.context() as patch:
        kill_during_epoch(patch, epoch=1, after_batches=1)
        with pytest.raises(Killed):
            train(killed, base=base)
    train(killed, "train.resume=true", base=base)
    assert_same_run(reference, killed)


def test_resume_from_path_with_more_epochs_equals_uninterrupted_run(tmp_path):
    """epochs=2, then train.resume=<last.pt> train.epochs=3: the same as 3 epochs in one go, for a
    schedule that does not depend on the run length (warm-up, then exponential decay per epoch)."""
    schedule = ["train.scheduler=exponential", "train.scheduler_params.decay_factor=0.5"]
    reference, first = tmp_path / "reference", tmp_path / "first"
    train(reference, "train.epochs=3", *schedule)
    train(first, "train.epochs=2", *schedule)
    # A new run directory is given (as a new Hydra run would get), but the run continues in the old one.
    elsewhere = tmp_path / "elsewhere"
    train(elsewhere, f"train.resume={first / 'checkpoints' / 'last.pt'}", "train.epochs=3", *schedule)
    assert not elsewhere.exists()
    assert_same_run(reference, first)
    assert [line["lr"] for line in metrics(first)] == pytest.approx([0.01, 0.005, 0.0025])


def test_resume_with_more_epochs_follows_the_longer_cosine_schedule(tmp_path):
    """A cosine run extended on resume continues on the schedule of its new length; it must not restart
    a periodic cosine from the stored one (which climbs back to the full lr)."""
    reference, first = tmp_path / "reference", tmp_path / "first"
    train(reference, "train.epochs=3")
    train(first, "train.epochs=2")
    assert metrics(first)[-1]["lr"] == pytest.approx(COSINE_ETA_MIN)  # the end of a 2-epoch schedule
    train(first, "train.epochs=3", "train.resume=true")
    assert [line["epoch"] for line in metrics(first)] == [1, 2, 3]
    # The lr after the last step is the end of the 3-epoch schedule, as in the uninterrupted run.
    assert metrics(first)[-1]["lr"] == pytest.approx(metrics(reference)[-1]["lr"]) == pytest.approx(COSINE_ETA_MIN)


def test_resume_with_another_scheduler_is_a_checkpoint_error(run_dir):
    train(run_dir, "train.epochs=1")  # cosine
    with pytest.raises(CheckpointError, match="does not fit this run"):
        train(run_dir, "train.epochs=2", "train.resume=true", "train.scheduler=exponential",
              "train.scheduler_params.decay_factor=0.5")


def test_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"epoch": 1, "model": {"w": torch.ones(3)}}, path)

    def dying_save(obj, handle):  # killed half-way through writing the new file
        handle.write(b"partial")
        raise Killed("killed while saving")

    monkeypatch.setattr(engine.checkpoint.torch, "save", dying_save)
    with pytest.raises(Killed):
        save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_resume_true_without_checkpoint_starts_a_new_run(run_dir):
    result = train(run_dir, "train.epochs=1", "train.resume=true")
    assert result["epochs_completed"] == 1


def test_resume_from_missing_path_is_a_checkpoint_error(tmp_path, run_dir):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(run_dir, f"train.resume={tmp_path / 'nowhere' / 'last.pt'}")


# --- evaluating a checkpoint ---------------------------------------------------------------------------------
FLEXNET_TINY = ["experiment=dev/flexnet_cifar10_tiny", "dataset_params.synthetic=true", "train.batch_size=8",
                "train.limit_train_batches=2", "train.limit_eval_batches=2", "wandb.mode=disabled", "device=cpu"]


def test_evaluating_best_checkpoint_reproduces_logged_test_accuracy(tmp_path):
    trained = tmp_path / "trained"
    train(trained, base=FLEXNET_TINY)  # a 2D FlexNet: far from the default config's 1D FlexTCN
    # A new run directory and none of the model overrides: everything comes from the checkpoint.
    evaluated = tmp_path / "evaluated"
    best = trained / "checkpoints" / "best.pt"
    result = train(evaluated, "train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                   "device=cpu", base=[])
    assert result["status"] == "evaluated"
    on_disk = summary(evaluated)
    assert on_disk["test_accuracy"] == summary(trained)["test_accuracy"]
    assert on_disk["test_loss"] == pytest.approx(summary(trained)["test_loss"])
    assert on_disk["no_params"] == summary(trained)["no_params"]
    assert on_disk["kernel_sizes"] == summary(trained)["kernel_sizes"]
    assert on_disk["checkpoint_epoch"] == summary(trained)["best_epoch"]
    assert not (evaluated / "checkpoints").exists()


def bad_checkpoints(tmp_path: Path, good: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pt" for name in ("garbage", "truncated", "foreign", "state_dict", "text")}
    files["garbage"].write_bytes(bytes(range(256)) * 64)
    files["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"epoch": 3, "weights": torch.zeros(3)}, files["foreign"])  # another project's dict
    torch.save(torch.nn.Linear(2, 2).state_dict(), files["state_dict"])   # a bare state dict
    files["text"].write_text("not a checkpoint\n")
    return files


def test_unreadable_checkpoints_give_one_checkpoint_error(tmp_path):
    trained = tmp_path / "trained"
    train(trained, "train.epochs=1")
    for name, path in bad_checkpoints(tmp_path, trained / "checkpoints" / "last.pt").items():
        with pytest.raises(CheckpointError) as info:
            train(tmp_path / f"eval_{name}", "train.do=False", "pretrained=True",
                  f"pretrained_params.filepath={path}", "device=cpu", base=[])
        assert str(path) in str(info.value), name
        with pytest.raises(CheckpointError):
            train(tmp_path / f"resume_{name}", f"train.resume={path}")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_of_another_model_is_a_checkpoint_error(tmp_path):
    trained = tmp_path / "trained"
    train(trained, "train.epochs=1")
    with pytest.raises(CheckpointError, match="do not fit the model"):
        # pretrained weights (not an evaluation) into a wider model
        train(tmp_path / "other", "train.epochs=1", "net.no_hidden=12", "pretrained=True",
              f"pretrained_params.filepath={trained / 'checkpoints' / 'last.pt'}")


# --- schedules -----------------------------------------------------------------------------------------------
def schedule_spec(scheduler: str, warmup_epochs: float, **params) -> OptimSpec:
    return OptimSpec(scheduler=scheduler, warmup_epochs=warmup_epochs, **{"decay_steps": (), "decay_factor": -1.0,
                                                                           "patience": -1, **params})


def two_group_optimizer(lr: float = 0.01, mask_lr: float = 0.001) -> torch.optim.Optimizer:
    weights, mask = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [weights], "lr": lr}, {"params": [mask], "lr": mask_lr}], lr=lr)


def lrs_per_step(optimizer, schedule, steps: int, start: int = 0) -> list[tuple[float, float]]:
    """(default, mask) lr used by each optimiser step ``start + 1 .. start + steps``."""
    used = []
    for step in range(start + 1, start + steps + 1):
        used.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"]))
        optimizer.step()
        schedule.step_iteration(step)
    return used


def test_warmup_cosine_curve_per_iteration():
    """Step t uses lr * t / W during the warm-up (W = 2 epochs x 5 steps), then a cosine over the other
    N - W = 20 steps ends at 1e-6, in every group."""
    optimizer = two_group_optimizer()
    schedule = build_schedule(optimizer, schedule_spec("cosine", warmup_epochs=2), epochs=6, steps_per_epoch=5)
    used = lrs_per_step(optimizer, schedule, 30)
    lr = [default for default, _ in used]
    assert lr[0] == pytest.approx(0.01 / 10)      # step 1: lr * 1 / W (the original used 0)
    assert lr[4] == pytest.approx(0.01 * 5 / 10)
    assert lr[9] == pytest.approx(0.01)           # step W: the full lr
    assert lr[10] == pytest.approx(0.01)          # first cosine step
    assert lr[20] == pytest.approx(COSINE_ETA_MIN + (0.01 - COSINE_ETA_MIN) / 2)  # half-way through the cosine
    assert all(a > b for a, b in zip(lr[10:], lr[11:]))
    assert lr[29] == pytest.approx(COSINE_ETA_MIN + (0.01 - COSINE_ETA_MIN) * (1 + math.cos(math.pi * 19 / 20)) / 2)
    mask = [m for _, m in used]
    assert mask[4] == pytest.approx(0.001 * 5 / 10) and mask[20] == pytest.approx((0.001 + COSINE_ETA_MIN) / 2)
    # After the last step both groups sit at eta_min.
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([COSINE_ETA_MIN] * 2)
    # Stepping past the planned end keeps eta_min (a plain CosineAnnealingLR would climb back up).
    assert lrs_per_step(optimizer, schedule, 5, start=30)[-1] == pytest.approx((COSINE_ETA_MIN,) * 2)


def test_cosine_without_warmup_starts_at_full_lr():
    optimizer = two_group_optimizer()
    schedule = build_schedule(optimizer, schedule_spec("cosine", warmup_epochs=-1), epochs=2, steps_per_epoch=5)
    lr = [default for default, _ in lrs_per_step(optimizer, schedule, 10)]
    assert lr[0] == pytest.approx(0.01)
    assert lr[5] == pytest.approx(COSINE_ETA_MIN + (0.01 - COSINE_ETA_MIN) / 2)


def test_warmup_longer_than_the_run():
    optimizer = two_group_optimizer()
    schedule = build_schedule(optimizer, schedule_spec("cosine", warmup_epochs=5), epochs=1, steps_per_epoch=4)
    lr = [default for default, _ in lrs_per_step(optimizer, schedule, 4)]
    assert lr == pytest.approx([0.01 * t / 20 for t in range(1, 5)])


def test_cosine_schedule_state_resumes_on_the_new_length():
    """The schedule state of a 2-epoch run loaded into a 4-epoch run: the lr continues on the 4-epoch
    curve, exactly as a 4-epoch schedule stepped as often."""
    short_opt, long_opt = two_group_optimizer(), two_group_optimizer()
    short = build_schedule(short_opt, schedule_spec("cosine", warmup_epochs=1), epochs=2, steps_per_epoch=5)
    lrs_per_step(short_opt, short, 10)
    resumed_opt = two_group_optimizer()
    resumed = build_schedule(resumed_opt, schedule_spec("cosine", warmup_epochs=1), epochs=4, steps_per_epoch=5)
    resumed_opt.load_state_dict(short_opt.state_dict())
    resumed.load_state_dict(short.state_dict())
    fresh = build_schedule(long_opt, schedule_spec("cosine", warmup_epochs=1), epochs=4, steps_per_epoch=5)
    lrs_per_step(long_opt, fresh, 10)
    continued = [lr for pair in lrs_per_step(resumed_opt, resumed, 10, start=10) for lr in pair]
    expected = [lr for pair in lrs_per_step(long_opt, fresh, 10, start=10) for lr in pair]
    assert continued == pytest.approx(expected)


SCHEDULES = {  # train.scheduler overrides -> expected lr logged after epochs 1 and 2 (None: not checked)
    "none": (["train.scheduler=none"], [0.01, 0.01]),
    "empty": (["train.scheduler=''"], [0.01, 0.01]),
    "cosine": (["train.scheduler=cosine", "train.scheduler_params.warmup_epochs=-1"], None),
    "cosine+warmup": (["train.scheduler=cosine", "train.scheduler_params.warmup_epochs=1"], None),
    "multistep": (["train.scheduler=multistep", "train.scheduler_params.decay_steps=[1]",
                   "train.scheduler_params.decay_factor=2"], [0.01, 0.005]),
    "plateau": (["train.scheduler=plateau", "train.scheduler_params.decay_factor=2",
                 "train.scheduler_params.patience=0"], None),
    "exponential": (["train.scheduler=exponential", "train.scheduler_params.decay_factor=0.5"], [0.01, 0.005]),
}


# After 2 epochs of 4 steps: optimiser steps taken by the per-step part (the preset's 1-epoch warm-up, then
# the cosine; before a per-epoch schedule only the 4 warm-up steps), epochs by the per-epoch and plateau parts.
STORED_SCHEDULE_STEPS = {
    "none": {"per_step": 8, "per_epoch": None, "plateau": None},
    "empty": {"per_step": 8, "per_epoch": None, "plateau": None},
    "cosine": {"per_step": 8, "per_epoch": None, "plateau": None},
    "cosine+warmup": {"per_step": 8, "per_epoch": None, "plateau": None},
    "multistep": {"per_step": 4, "per_epoch": 2, "plateau": None},
    "plateau": {"per_step": 8, "per_epoch": None, "plateau": 2},
    "exponential": {"per_step": 4, "per_epoch": 2, "plateau": None},
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_scheduler_trains_checkpoints_and_resumes(name, run_dir):
    overrides, expected_lrs = SCHEDULES[name]
    train(run_dir, "train.epochs=2", *overrides)
    lrs = [line["lr"] for line in metrics(run_dir)]
    if expected_lrs is not None:
        assert lrs == pytest.approx(expected_lrs)
    assert all(0 < lr <= 0.01 for lr in lrs)
    # The checkpoint holds the state of each part of the schedule, stepped as often as the run stepped it
    # (a part the scheduler does not have is None), and resuming from it works.
    stored = load_checkpoint(run_dir / "checkpoints" / "last.pt")["schedule"]
    steps = {part: None if state is None else state["last_epoch"] for part, state in stored.items()}
    assert steps == STORED_SCHEDULE_STEPS[name]
    result = train(run_dir, "train.epochs=3", "train.resume=true", *overrides)
    assert result["epochs_completed"] == 3


def test_plateau_reduces_lr_on_validation_accuracy():
    optimizer = two_group_optimizer()
    schedule = build_schedule(optimizer, schedule_spec("plateau", warmup_epochs=-1, decay_factor=2.0,
                                                      patience=0), epochs=5, steps_per_epoch=1)
    for accuracy in (0.5, 0.6, 0.6):
        schedule.step_epoch(accuracy)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)  # only the third did not improve


# --- optimiser groups ----------------------------------------------------------------------------------------
OMEGA_MODEL = ["experiment=dev/flexnet_cifar10_tiny", "kernel.type=SIREN", "kernel.learn_omega_0=true", "train.lr=0.02",
               "train.mask_params_lr_factor=0.1", "train.omega_0_lr_factor=0.5"]


def omega_model_spec(*overrides: str):
    return read_command([*OMEGA_MODEL, *overrides]).spec


@pytest.mark.parametrize("optimizer", ["Adam", "AdamW", "SGD", "RMSprop"])
def test_optimizer_groups_get_their_lr_factors(optimizer):
    spec = omega_model_spec(f"train.optimizer={optimizer}")  # read and validated
    model = build_model(spec.model, 2, 3, 10)
    built = build_optimizer(model, spec.optim)
    assert type(built).__name__ == optimizer
    names = {id(p): name for name, p in model.named_parameters()}
    groups = {group["name"]: group for group in built.param_groups}
    assert {g: groups[g]["lr"] for g in groups} == pytest.approx({"default": 0.02, "mask": 0.002, "omega_0": 0.01})
    # Membership checked against the modules themselves, not against the tags the optimiser used.
    mask = {id(m.mask_params) for m in model.modules() if isinstance(m, FlexConv)}
    assert {id(p) for p in groups["mask"]["params"]} == mask and len(mask) == 5
    assert {names[id(p)].rsplit(".", 1)[-1] for p in groups["omega_0"]["params"]} == {"omega_0"}
    every = [id(p) for group in built.param_groups for p in group["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    # One step works with every group.
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    built.step()


def test_sgd_with_negative_momentum_is_rejected_clearly():
    overrides = ["train.optimizer=SGD", "train.optimizer_params.momentum=-1"]
    with pytest.raises(ConfigError, match=r"train\.optimizer_params\.momentum=-1.0 is invalid: SGD needs momentum >= 0"):
        omega_model_spec(*overrides)


# --- divergence ----------------------------------------------------------------------------------------------
def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(run_dir, monkeypatch):
    calls = {"n": 0}
    real = engine.trainer.Regularizers.__call__

    def poisoned(self, model):  # the loss of epoch 2, step 2 becomes NaN
        calls["n"] += 1
        total, aa = real(self, model)
        return (float("nan") if calls["n"] == STEPS_PER_EPOCH + 2 else total), aa

    monkeypatch.setattr(engine.trainer.Regularizers, "__call__", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 2"):
        train(run_dir, "train.epochs=3")
    kept = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1 and kept["global_step"] == STEPS_PER_EPOCH
    assert all(torch.isfinite(t).all() for t in kept["model"].values() if torch.is_tensor(t) and t.is_floating_point())
    assert summary(run_dir)["status"] == "diverged" and "epoch 2, step 2" in summary(run_dir)["error"]
    assert [line["epoch"] for line in metrics(run_dir)] == [1]
    # Resumed (here without the fault), the run finishes and its summary no longer reports the old error.
    monkeypatch.undo()
    train(run_dir, "train.epochs=3", "train.resume=true")
    assert summary(run_dir)["status"] == "completed" and "error" not in summary(run_dir)
    assert [line["epoch"] for line in metrics(run_dir)] == [1, 2, 3]


# --- W&B -----------------------------------------------------------------------------------------------------
class BrokenWandbRun:
    id = "broken"

    def __init__(self):
        self.summary = {}

    def log(self, *args, **kwargs):
        raise ConnectionError("W&B server unreachable")

    def finish(self):
        pass


@pytest.mark.parametrize("failure", ["init", "log"])
def test_wandb_failures_never_stop_training(failure, run_dir, monkeypatch):
    """wandb.init raising (no network, bad entity) or a later call raising: the run goes on, logged locally."""
    fake = types.ModuleType("wandb")  # stands in for the real package: no network, no seconds of start-up

    def init(**kwargs):
        if failure == "init":
            raise ConnectionError("W&B server unreachable")
        return BrokenWandbRun()

    fake.init, fake.Settings = init, lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "wandb", fake)
    with pytest.warns(UserWarning, match="W&B"):
        result = train(run_dir, "train.epochs=2", "wandb.mode=online")
    assert result["status"] == "completed"
    assert [line["epoch"] for line in metrics(run_dir)] == [1, 2]
