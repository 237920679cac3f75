"""What the training features do, not only that a run with them finishes: gradient clipping, input
dropout, top-5 accuracy, early stopping, which epochs evaluate the test set, non-strict pretrained
weights, mixed precision, the spatial / FFT choice, and that a short run learns (loss falls, masks grow).

Most tests drive ``engine.trainer`` with hand-built models and loaders whose results are known exactly;
the runs use the tiny FlexTCN on synthetic MNIST-1D of test_engine.py (4 steps per epoch).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import engine.experiment
import engine.trainer
from ckconv.nn import functional
from config import compose_config, model_spec, read_command
from conftest import TINY_RUN
from engine.build import load_weights
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engine.experiment import run
from engine.optim import Schedule
from engine.specs import LoopSpec
from engine.trainer import Regularizers, evaluate, train_one_epoch, training_loss
from models import build_model, kernel_sizes

TINY = [*TINY_RUN, "train.plot_every=-1"]
CPU = torch.device("cpu")


def train(run_dir: Path, *overrides: str, base=TINY) -> dict:
    args = [*base, *overrides]
    return run(read_command(args), run_dir)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def one_epoch(model, loader, grad_clip: float = 0.0, **loop) -> None:
    """One epoch of engine.trainer.train_one_epoch with plain SGD (lr 1) and no schedule or regularisers."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train_one_epoch(model, loader, optimizer, Schedule(), Regularizers(), LoopSpec(epochs=1, **loop), CPU,
                    epoch=0, global_step=0, grad_clip=grad_clip, progress=False)


def test_config_keys_reach_the_run_spec():
    """The keys the training loop reads, in the run spec it is given (LoopSettings is gone: Trainer reads
    ``spec.optim.grad_clip``, ``spec.loop`` and ``spec.runtime.mixed_precision``)."""
    spec = read_command([*TINY, "train.grad_clip=0.5", "net.dropout_in=0.2", "train.report_top5_acc=true",
                         "train.early_stop_patience=3", "train.mixed_precision=true"]).spec
    assert (spec.optim.grad_clip, spec.loop.dropout_in, spec.loop.report_top5, spec.loop.early_stop_patience,
            spec.runtime.mixed_precision) == (0.5, 0.2, True, 3, True)


# --- train.grad_clip -----------------------------------------------------------------------------------------
def sgd_update_norm(grad_clip: float) -> float:
    """Norm of the parameter update of one SGD step (lr 1, so the update is the gradient after clipping)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    inputs, labels = 100 * torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])  # large inputs: large gradients
    one_epoch(model, [(inputs, labels)], grad_clip=grad_clip)
    return float((torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm())


def test_grad_clip_bounds_the_gradient_norm_of_a_step():
    unclipped = sgd_update_norm(0.0)
    assert unclipped > 10
    assert sgd_update_norm(0.5) == pytest.approx(0.5, rel=1e-4)  # clipped to train.grad_clip exactly
    assert sgd_update_norm(2 * unclipped) == pytest.approx(unclipped, rel=1e-6)  # below the bound: untouched


# --- net.dropout_in ------------------------------------------------------------------------------------------
class InputRecorder(torch.nn.Module):
    """Logits from a linear layer; keeps every input it is given."""

    def __init__(self, length: int):
        super().__init__()
        self.linear = torch.nn.Linear(length, 10)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def test_input_dropout_in_training_only():
    model = InputRecorder(40)
    inputs, labels = torch.ones(16, 1, 40), torch.zeros(16, dtype=torch.long)
    torch.manual_seed(0)
    one_epoch(model, [(inputs, labels)], dropout_in=0.5)
    trained_on = model.seen[-1]
    # Dropout on the raw inputs: each element is dropped or scaled by 1 / (1 - p).
    assert set(trained_on.unique().tolist()) == {0.0, 2.0}
    assert 0.4 < float((trained_on == 0).float().mean()) < 0.6  # 640 elements, p = 0.5
    evaluate(model, [(inputs, labels)], CPU)
    assert torch.equal(model.seen[-1], inputs)  # evaluation sees the inputs unchanged


# --- top-5 accuracy ------------------------------------------------------------------------------------------
class Lookup(torch.nn.Module):
    """Sample i (its input is the number i) -> logits row i of a fixed table."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, x):
        return self.table[x[:, 0].long()]


def test_evaluate_reports_exact_top1_and_top5_accuracy():
    # 6 samples, 7 classes, logits 7, 6, ..., 1 for classes rolled by i; the label sits at `rank` in that order.
    ranks = [0, 1, 4, 5, 6, 0]
    table = torch.stack([torch.arange(7, 0, -1.0).roll(i) for i in range(6)])
    labels = torch.tensor([(rank + i) % 7 for i, rank in enumerate(ranks)])
    loader = DataLoader(TensorDataset(torch.arange(6.0)[:, None], labels), batch_size=4)  # batches of 4 and 2
    result = evaluate(Lookup(table), loader, CPU, top5=True)
    assert result["accuracy"] == pytest.approx(2 / 6)       # ranks 0, 0
    assert result["accuracy_top5"] == pytest.approx(4 / 6)  # ranks 0, 1, 4, 0
    log_sum = math.log(sum(math.exp(v) for v in range(1, 8)))
    assert result["loss"] == pytest.approx(sum(log_sum - (7 - rank) for rank in ranks) / 6)
    assert "accuracy_top5" not in evaluate(Lookup(table), loader, CPU)
    # Fewer than 5 classes: every label is in the top 5.
    assert evaluate(Lookup(table[:, :3]), DataLoader(TensorDataset(torch.arange(6.0)[:, None], labels % 3)),
                    CPU, top5=True)["accuracy_top5"] == 1.0


def test_report_top5_acc_in_metrics_and_summary(run_dir):
    train(run_dir, "train.epochs=1", "train.report_top5_acc=true")
    line = metrics(run_dir)[0]
    assert line["accuracy_top5_val"] >= line["accuracy_val"] and line["accuracy_top5_test"] >= line["accuracy_test"]
    assert summary(run_dir)["test_accuracy_top5"] == line["accuracy_top5_test"]


# --- scripted validation: early stopping and the epochs that evaluate the test set ------------------------------
def script_validation(monkeypatch, results: list[tuple[float, float]]) -> list[str]:
    """The validation passes of Trainer.fit return ``results`` ((accuracy, loss) per epoch) in turn; other
    passes are real. Returns the list of passes made by Trainer.fit, "val" or "test", in order (the final test
    of best.pt, made by engine.lifecycle.finish_training, is real and not listed)."""
    real_evaluate, real_build = engine.trainer.evaluate_with, engine.experiment.build_run_data
    bundles, passes, scripted = [], [], iter(results)

    def build_run_data(*args, **kwargs):
        bundles.append(real_build(*args, **kwargs))
        return bundles[-1]

    def evaluate_with(spec, model, loader, *args, **kwargs):  # what Trainer.fit evaluates with
        result = real_evaluate(spec, model, loader, *args, **kwargs)
        if loader is bundles[-1].val_loader:  # also the test loader under protocol=paper
            passes.append("val")
            result["accuracy"], result["loss"] = next(scripted)
        else:
            assert loader is bundles[-1].test_loader
            passes.append("test")
        return result

    monkeypatch.setattr(engine.experiment, "build_run_data", build_run_data)
    monkeypatch.setattr(engine.trainer, "evaluate_with", evaluate_with)
    return passes


def test_early_stopping_after_exactly_patience_epochs_without_improvement(run_dir, monkeypatch):
    # Best at epoch 2; epoch 3 ties its accuracy with a higher loss (no improvement), epoch 4 is lower.
    script_validation(monkeypatch, [(0.5, 1.0), (0.6, 1.0), (0.6, 1.1), (0.55, 1.0)] + [(0.9, 0.1)] * 6)
    result = train(run_dir, "train.epochs=10", "train.early_stop_patience=2")
    assert (result["status"], result["epochs_completed"], result["best_epoch"]) == ("early_stopped", 4, 2)
    assert [line["epoch"] for line in metrics(run_dir)] == [1, 2, 3, 4]
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == 2


def test_clean_protocol_evaluates_the_test_set_only_when_validation_improves(run_dir, monkeypatch):
    # Validation improves at epochs 1 and 3 (epoch 4: same accuracy as epoch 3, higher loss).
    passes = script_validation(monkeypatch, [(0.5, 1.0), (0.4, 1.0), (0.6, 0.9), (0.6, 1.0)])
    result = train(run_dir, "train.epochs=4")
    assert passes == ["val", "test", "val", "val", "test", "val"]
    lines = metrics(run_dir)
    assert [line["epoch"] for line in lines if "accuracy_test" in line] == [1, 3]
    assert [line["epoch"] for line in lines if "loss_test" in line] == [1, 3]
    on_disk = summary(run_dir)
    assert (on_disk["best_epoch"], on_disk["best_val_accuracy"]) == (3, 0.6)
    # The reported number is the test accuracy at the best-validation epoch (re-evaluated from best.pt); the
    # paper's maximum over epochs is not known under this protocol.
    assert on_disk["test_accuracy"] == result["test_accuracy"] == lines[2]["accuracy_test"]
    assert on_disk["best_test_accuracy"] is None


def test_paper_protocol_tests_every_epoch_and_reports_the_best(run_dir, monkeypatch):
    passes = script_validation(monkeypatch, [(0.5, 1.0), (0.7, 1.0), (0.6, 0.9)])
    train(run_dir, "train.epochs=3", "protocol=paper")
    assert passes == ["val"] * 3  # the validation pass is the test pass
    lines = metrics(run_dir)
    assert [line["accuracy_test"] for line in lines] == [line["accuracy_val"] for line in lines] == [0.5, 0.7, 0.6]
    assert summary(run_dir)["best_test_accuracy"] == 0.7


# --- pretrained_strict ---------------------------------------------------------------------------------------
def test_pretrained_strict_false_loads_a_checkpoint_with_missing_and_extra_keys(tmp_path, capsys):
    trained = tmp_path / "trained"
    train(trained, "train.epochs=1")
    state = load_checkpoint(trained / "checkpoints" / "last.pt")
    state.pop("format", None)
    weights = dict(state["model"])
    del weights["out_layer.weight"]
    weights["extra.weight"] = torch.zeros(3)
    edited = tmp_path / "edited.pt"
    save_checkpoint({**state, "model": weights}, edited)

    model = build_model(model_spec(compose_config(TINY)), 1, 1, 10)
    initial = model.out_layer.weight.detach().clone()
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_weights(model, weights, strict=True, source=str(edited))
    load_weights(model, weights, strict=False, source=str(edited))
    loaded = model.state_dict()
    for name, value in weights.items():
        if name in loaded and torch.is_tensor(value):
            assert torch.equal(loaded[name], value), name
    assert torch.equal(model.out_layer.weight, initial)  # missing from the checkpoint: left as built

    # The same through a run: strict by default, pretrained_strict=False loads what fits and says what did not.
    with pytest.raises(CheckpointError, match="pretrained_strict=False"):
        train(tmp_path / "strict", "train.epochs=1", "pretrained=True", f"pretrained_params.filepath={edited}")
    capsys.readouterr()
    result = train(tmp_path / "lenient", "train.epochs=1", "pretrained=True", f"pretrained_params.filepath={edited}",
                   "pretrained_strict=False")
    assert result["status"] == "completed"
    assert "missing ['out_layer.weight'], unexpected ['extra.weight']" in capsys.readouterr().out


# --- train.mixed_precision -----------------------------------------------------------------------------------
def test_mixed_precision_on_cpu_runs_the_forward_in_bfloat16_and_the_ffts_in_float32(monkeypatch):
    model = build_model(model_spec(compose_config([*TINY, "conv.use_fft=true"])), 1, 1, 10)
    layer_outputs = []
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
            module.register_forward_hook(lambda module, args, output: layer_outputs.append(output.dtype))
    fft_inputs = []
    real_rfftn = torch.fft.rfftn
    monkeypatch.setattr(torch.fft, "rfftn", lambda x, *args, **kwargs: fft_inputs.append(x.dtype)
                        or real_rfftn(x, *args, **kwargs))
    inputs, labels = torch.randn(4, 1, 40), torch.tensor([0, 1, 2, 3])

    loss, outputs, _ = training_loss(model, model, inputs, labels, Regularizers(), CPU, mixed_precision=True)
    assert outputs.dtype == torch.bfloat16 and layer_outputs and set(layer_outputs) == {torch.bfloat16}
    assert fft_inputs and set(fft_inputs) == {torch.float32}
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    layer_outputs.clear()
    _, outputs, _ = training_loss(model, model, inputs, labels, Regularizers(), CPU, mixed_precision=False)
    assert outputs.dtype == torch.float32 and set(layer_outputs) == {torch.float32}


def test_mixed_precision_run_trains_with_finite_losses(run_dir):
    result = train(run_dir, "train.epochs=2", "train.mixed_precision=true", "conv.use_fft=true")
    assert result["status"] == "completed"
    lines = metrics(run_dir)
    assert all(math.isfinite(line["loss_train"]) and math.isfinite(line["loss_val"]) for line in lines)
    assert lines[1]["loss_train"] != lines[0]["loss_train"]  # the weights did change


# --- use_fft="auto" ------------------------------------------------------------------------------------------
# A fixed rule, not the measured one (that changes whenever the CPU is measured again).
RULE = {"1d": {"64": 33, "256": 21}, "2d": {"16": 9, "32": 5}}


@pytest.fixture
def fixed_rule(monkeypatch):
    monkeypatch.setitem(functional.CROSSOVER_TABLE, "cpu", RULE)


@pytest.mark.parametrize("kernel_size, input_size, fft", [
    ((20,), 256, False), ((21,), 256, True), ((257,), 1024, True),       # 1D, inputs >= 256: taps >= 21
    ((21,), 100, False), ((33,), 100, True), ((33,), 10, True),          # 1D, 64 <= input < 256 and below 64: 33
    ((21,), None, False), ((33,), None, True),                           # input size unknown: the largest, 33
    ((7, 7), 16, False), ((8, 8), 16, False), ((9, 8), 16, False), ((9, 9), 16, True),  # 2D, 16 px: 9 * 9 = 81
    ((3, 27), 16, True), ((1, 80), 16, False), ((1, 81), 16, True), ((33, 33), 8, True),
    ((5, 5), 32, True), ((5, 5), 64, True), ((5, 5), 31, False), ((3, 9), 32, True), ((4, 6), 32, False),
])
def test_prefer_fft_thresholds(fixed_rule, kernel_size, input_size, fft):
    assert functional.prefer_fft(kernel_size, input_size=input_size) is fft


@pytest.mark.parametrize("taps, shape, fft", [
    ((20,), (300,), False), ((21,), (300,), True), ((21,), (100,), False),
    ((7, 11), (24, 24), False), ((9, 9), (24, 24), True), ((5, 5), (40, 40), True), ((5, 5), (24, 24), False),
    ((5, 5), (64, 20), False), ((5, 5), (40, 64), True),  # 2D: the rule of the smaller side
])
def test_convolve_auto_takes_the_path_the_rule_picks(fixed_rule, taps, shape, fft, monkeypatch):
    calls = []
    for name in ("causal_conv1d", "causal_fftconv1d", "conv2d_same", "fftconv2d_same"):
        real = getattr(functional, name)
        monkeypatch.setattr(functional, name, lambda *args, _name=name, _real=real, **kwargs:
                            calls.append(_name) or _real(*args, **kwargs))
    functional.convolve(torch.randn(1, 2, *shape), torch.randn(3, 2, *taps), None, "auto")
    assert calls == [("causal_fftconv1d" if fft else "causal_conv1d") if len(taps) == 1
                     else ("fftconv2d_same" if fft else "conv2d_same")]


# --- a short run learns ----------------------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """One intra-op thread: on a small shared CPU, more threads than free cores make the run several times
    slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_default_flextcn_learns_and_grows_its_masks(run_dir, one_thread):
    """The default experiment (FlexTCN on real MNIST-1D), 3 epochs of 10 batches without warm-up and with the
    mask at the full learning rate (train.mask_params_lr_factor=1), so 30 steps show what 50 epochs do."""
    overrides = ["train.epochs=3", "train.limit_train_batches=10", "train.limit_eval_batches=1",
                 "train.scheduler_params.warmup_epochs=-1", "train.mask_params_lr_factor=1", "device=cpu",
                 "wandb.mode=disabled", "train.plot_every=-1"]
    initial = build_model(model_spec(compose_config(overrides)), 1, 1, 10)
    initial(torch.zeros(1, 1, 40))  # horizon "same": the grid, and so the kernel size, is set by the first forward
    initial_sizes = {name: size[0] for name, size in kernel_sizes(initial).items()}
    assert len(initial_sizes) == 8 and set(initial_sizes.values()) == {4}  # mask.init_value=0.075 on 40 steps

    result = train(run_dir, base=overrides)
    assert result["status"] == "completed" and result["dataset"] == "MNIST1D"
    lines = metrics(run_dir)
    losses = [line["loss_train"] for line in lines]
    assert losses[-1] < losses[0] - 0.1, losses
    final_sizes = {name: size[0] for name, size in lines[-1]["kernel_sizes"].items()}  # after the last epoch
    assert final_sizes.keys() == initial_sizes.keys()
    # 30 noisy steps: a layer may stay where it started, but the masks grow as a whole.
    grown = [name for name in final_sizes if final_sizes[name] > initial_sizes[name]]
    assert len(grown) >= len(final_sizes) - 1, final_sizes
    assert sum(final_sizes.values()) >= sum(initial_sizes.values()) + len(final_sizes), final_sizes  # +1 tap a layer
    sigmas = lines[-1]["mask_sigmas"]
    assert sum(sigma[0] > 0.075 for sigma in sigmas.values()) >= len(sigmas) - 1, sigmas
