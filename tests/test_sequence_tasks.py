"""The generated memory tasks (the adding problem, copy memory) and the task notion they bring: a regression and a
per-step classification, each with its loss, metric, readout and summary names; a short run on the adding problem
learns."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import datasets as D
from config import ConfigError, read_command
from datasets.sequence_tasks import adding_problem, copy_memory
from engine.checkpoint import load_checkpoint
from engine.experiment import run
from engine.tasks import TASKS, get_task
from engine.trainer import BestState
from models import ModelSpec, NetSpec, build_model


def test_adding_problem_marks_two_steps_and_sums_their_values():
    data = adding_problem(500, 30, torch.Generator().manual_seed(0))
    values, markers = data.inputs[:, 0], data.inputs[:, 1]
    assert data.inputs.shape == (500, 2, 30) and data.targets.shape == (500,)
    assert markers.sum(dim=1).tolist() == [2.0] * 500 and set(markers.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(data.targets, (values * markers).sum(dim=1))
    assert 0 <= float(values.min()) and float(values.max()) < 1
    assert abs(float(data.targets.var()) - 1 / 6) < 0.03  # the MSE of always predicting the mean


def test_copy_memory_repeats_the_digits_after_the_marker():
    data = copy_memory(50, 20, 5, torch.Generator().manual_seed(0))
    x, y = data.inputs[:, 0], data.targets
    assert x.shape == (50, 30) and y.shape == (50, 30) and y.dtype == torch.long
    digits = x[:, :5]
    assert bool(((digits >= 1) & (digits <= 8)).all())
    assert bool((x[:, 5:24] == 0).all()) and bool((x[:, 24:] == 9).all())  # blanks, then the recall marker
    assert bool((y[:, :25] == 0).all()) and torch.equal(y[:, 25:], digits.long())


def test_generated_tasks_are_fixed_by_the_seed_and_sized_like_the_original():
    def parts(seed, protocol="clean"):
        return D.build_data("AddProblem", seq_length=12, batch_size=1000, seed=seed, protocol=protocol)

    data = parts(0)
    assert [len(l.dataset) for l in (data.train_loader, data.val_loader, data.test_loader)] == [50000, 1000, 1000]
    paper = parts(0, "paper")
    assert paper.val_loader is paper.test_loader
    first = next(iter(data.test_loader))[0]
    torch.testing.assert_close(next(iter(parts(0).test_loader))[0], first)
    assert not torch.equal(next(iter(parts(1).test_loader))[0], first)
    assert not torch.equal(next(iter(data.val_loader))[0], first)  # validation is drawn apart from the test set
    copy = D.build_data("CopyMemory", batch_size=4, seq_length=30, memory_size=4)
    assert copy.meta.input_shape == (1, 38) and len(copy.train_loader.dataset) == 10000


def test_tasks_compute_their_losses_and_metrics():
    classification, regression, per_step = (TASKS[name] for name in D.TASKS)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(classification.loss(logits, labels), F.cross_entropy(logits, labels))
    loss_sum, correct = classification.sums(logits, labels)
    torch.testing.assert_close(loss_sum, F.cross_entropy(logits, labels, reduction="sum"))
    assert int(correct) == int((logits.argmax(1) == labels).sum())

    predictions, targets = torch.tensor([[1.0], [0.5]]), torch.tensor([0.0, 1.0])
    assert float(regression.loss(predictions, targets)) == pytest.approx((1 + 0.25) / 2)
    assert [float(v) for v in regression.sums(predictions, targets)] == pytest.approx([1.25, 1.25])
    assert regression.score(0.1) > regression.score(0.2) and classification.score(0.2) > classification.score(0.1)

    step_logits = torch.zeros(2, 3, 4)
    step_logits[0, 1] = 1.0                               # sample 0 answers class 1 at every step
    step_targets = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    loss_sum, accuracy_sum = per_step.sums(step_logits, step_targets)
    assert float(accuracy_sum) == pytest.approx(0.5 + 1.0)  # per-sample accuracy over the steps, summed
    torch.testing.assert_close(loss_sum / 2, F.cross_entropy(step_logits, step_targets))
    with pytest.raises(ValueError, match="classification, regression, per_step_classification"):
        get_task("ranking")


def test_models_read_out_at_every_step_where_the_task_asks():
    spec = ModelSpec(net=NetSpec(type="TCN", no_hidden=8, no_blocks=1))
    per_step, last = build_model(spec, 1, 1, 10, per_step=True), build_model(spec, 1, 1, 10)
    x = torch.randn(3, 1, 25)
    assert per_step(x).shape == (3, 10, 25) and last(x).shape == (3, 10)
    per_step.load_state_dict(last.state_dict())  # the same weights: the readout is applied at every step
    per_step.eval(), last.eval()
    torch.testing.assert_close(per_step(x)[:, :, -1], last(x))
    with pytest.raises(ValueError, match="net.type=ResNet has no output at every time step.*TCN"):
        build_model(ModelSpec(net=NetSpec(type="ResNet", no_hidden=8, no_blocks=1)), 1, 1, 10, per_step=True)


def test_best_state_of_a_classification_is_stored_under_the_old_names():
    best = BestState(val_metric=0.5, val_loss=1.2, epoch=3, test_metric=0.4, best_test_metric=None,
                     epochs_since_best=1)
    stored = best.stored(TASKS["classification"])
    assert list(stored) == ["val_accuracy", "val_loss", "epoch", "test_accuracy", "best_test_accuracy",
                            "epochs_since_best"]  # the checkpoints of classification runs are unchanged
    assert BestState.from_stored(stored, TASKS["classification"]) == best
    assert set(best.summary(TASKS["regression"])) == {"best_val_mse", "test_mse", "best_test_mse"}


# The adding problem at 10 steps with a FlexTCN whose masks start wide enough to see the sequence.
ADDING = ["dataset=AddProblem", "dataset_params.seq_length=10", "net.no_hidden=16", "net.no_blocks=2",
          "kernel.no_hidden=16", "net.dropout=0.0", "mask.init_value=0.5", "train.lr=0.003", "train.batch_size=64",
          "train.scheduler_params.warmup_epochs=0", "wandb.mode=disabled", "device=cpu", "train.plot_every=-1"]


def test_a_short_run_on_the_adding_problem_learns(tmp_path):
    # 150 steps of 64 sequences (cosine schedule), a few seconds on a CPU; about 0.016 with seeds 0, 1 and 2.
    summary = run(read_command([*ADDING, "train.epochs=1", "train.limit_train_batches=150"]), tmp_path / "run")
    variance = 1 / 6  # the MSE of the best constant prediction
    assert summary["status"] == "completed" and summary["test_mse"] < variance / 4, summary["test_mse"]
    assert summary["best_val_mse"] < variance / 4 and summary["best_test_mse"] is None
    assert "test_accuracy" not in summary and "best_val_accuracy" not in summary
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert {"mse_train", "mse_val", "mse_test", "best_val_mse"} <= set(line) and "accuracy_val" not in line
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["best"]["val_mse"] == summary["best_val_mse"]
    evaluate = ["wandb.mode=disabled", "device=cpu", "train.do=False", "pretrained=True",
                f"pretrained_params.filepath={tmp_path / 'run' / 'checkpoints' / 'best.pt'}"]
    evaluated = run(read_command(evaluate), tmp_path / "eval")
    assert evaluated["test_mse"] == summary["test_mse"]
    # Sampling rates are for the datasets that have them: checked against the checkpoint's dataset.
    with pytest.raises(ConfigError, match=r"test.sampling_rates=\[2\].*not supported by dataset 'AddProblem'"):
        run(read_command([*evaluate, "test.sampling_rates=[2]"]), tmp_path / "rates")


def test_copy_memory_trains_with_a_loss_and_accuracy_at_every_step(tmp_path):
    overrides = ["dataset=CopyMemory", "dataset_params.seq_length=20", "dataset_params.memory_size=4",
                 "net.no_hidden=8", "net.no_blocks=1", "kernel.no_hidden=8", "train.batch_size=50",
                 "train.epochs=1", "train.limit_train_batches=30", "wandb.mode=disabled", "device=cpu",
                 "train.plot_every=-1", "protocol=paper"]
    summary = run(read_command(overrides), tmp_path / "run")
    # Answering "blank" everywhere gets (20 + 4) / 28 of the steps right; the accuracy is over every step.
    assert summary["status"] == "completed" and 0 <= summary["test_accuracy"] <= 1
    assert summary["best_test_accuracy"] == summary["best_val_accuracy"]  # protocol=paper: validated on test
