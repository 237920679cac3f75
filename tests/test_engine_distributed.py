"""Two processes on the CPU (gloo), spawned with torchrun's environment variables, calling the engine
directly: the ranks must take the same decisions even when only one of them sees a problem, evaluate
disjoint shards that sum to the whole set's metrics, and end training with identical weights.
(test_run_experiment.py runs the real torchrun launcher.)
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import time
from pathlib import Path

import pytest

from conftest import TINY_RUN

TINY = list(TINY_RUN)
WORLD_SIZE = 2
# 64 synthetic training samples shared by 2 ranks, batch 16: 2 steps per epoch; the NaN comes at epoch 2, step 2.
NAN_AT_CALL = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_main(rank: int, port: int, base_dir: Path, results) -> None:
    """One rank: the engine as under torchrun, with a NaN loss in rank 1 only."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    import engine.experiment
    import engine.lifecycle
    import engine.trainer
    from config import read_command

    real_regularizers = engine.trainer.Regularizers.__call__
    calls = []

    def poisoned(self, model):
        calls.append(1)
        total, aa = real_regularizers(self, model)
        return (float("nan") if rank == 1 and len(calls) == NAN_AT_CALL else total), aa

    engine.trainer.Regularizers.__call__ = poisoned
    seeds = []
    real_seed_everything = engine.lifecycle.seed_everything
    engine.lifecycle.seed_everything = lambda seed, *a: (seeds.append(seed), real_seed_everything(seed, *a))[1]

    args = [*TINY, "train.epochs=3", "seed=-1"]
    outcome = {"rank": rank, "error": None}
    try:
        # Each rank gets its own directory, as Hydra would give them; the engine must use rank 0's.
        engine.experiment.run(read_command(args), base_dir / f"rank{rank}")
    except Exception as error:  # reported to the test, which checks the type and message
        outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["seeds"] = seeds
    results.put(outcome)


def run_ranks(target, base_dir: Path, timeout: float = 180) -> dict[int, dict]:
    """Start ``target(rank, port, base_dir, results)`` in WORLD_SIZE spawned processes; their outcomes by rank."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=target, args=(rank, port, base_dir, results)) for rank in range(WORLD_SIZE)]
    for process in processes:
        process.start()
    outcomes = {}
    deadline = time.monotonic() + timeout
    try:
        while len(outcomes) < WORLD_SIZE and time.monotonic() < deadline:
            try:
                outcome = results.get(timeout=5)
                outcomes[outcome["rank"]] = outcome
            except queue.Empty:
                if all(not p.is_alive() for p in processes) and results.empty():
                    break
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():  # a rank stuck waiting for the other: that is the failure
                process.kill()
    assert sorted(outcomes) == list(range(WORLD_SIZE)), f"a rank hung or died: {outcomes}"
    return outcomes


def test_ranks_agree_on_seed_run_dir_and_a_nan_seen_by_one_rank(tmp_path):
    outcomes = run_ranks(rank_main, tmp_path)

    # Both ranks stop at the same step with the same error (rank 0's own loss was finite).
    for rank in (0, 1):
        assert outcomes[rank]["error"].startswith("NonFiniteLossError: loss became"), outcomes[rank]
        assert "at epoch 2, step 2" in outcomes[rank]["error"]
    assert "loss became nan" in outcomes[1]["error"]
    assert "another process" in outcomes[0]["error"]
    # seed=-1: one drawn seed for all ranks (data split, shuffling, sharding).
    assert outcomes[0]["seeds"] == outcomes[1]["seeds"] and len(outcomes[0]["seeds"]) == 1
    # Only rank 0 wrote, into its directory; the checkpoint of epoch 1 is kept.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0"]
    assert sorted(p.name for p in (tmp_path / "rank0" / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    import torch

    kept = torch.load(tmp_path / "rank0" / "checkpoints" / "last.pt", weights_only=True)
    assert kept["epoch"] == 1


# --- sharded evaluation, identical weights, early stopping ------------------------------------------------------
def state_digest(state: dict) -> dict[str, str]:
    """A digest per tensor of a state dict (exact: any differing bit changes it)."""
    import hashlib

    import torch

    return {name: hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
            for name, value in state.items() if torch.is_tensor(value)}


def tiny_model():
    """The TINY FlexTCN with the same initial weights in every process."""
    import torch

    from config import compose_config, model_spec
    from models import build_model

    torch.manual_seed(0)
    return build_model(model_spec(compose_config(TINY)), 1, 1, 10)


def counting_samples(model):
    """A forward pre-hook counting the samples ``model`` is evaluated on; returns (counts, handle)."""
    counts = []
    return counts, model.register_forward_pre_hook(lambda module, args: counts.append(args[0].shape[0]))


def synthetic_data(distributed: bool, batch_size: int = 5):
    from datasets import build_data

    return build_data("MNIST1D", root=None, batch_size=batch_size, synthetic=True, seed=0, distributed=distributed)


# Validation results rank 0 and rank 1 would see in the early-stopping run: rank 0's improve at epoch 1 only
# (epoch 2: same accuracy, higher loss), rank 1's every epoch. Only rank 0's may count.
SCRIPTED_VAL = {0: [(0.5, 1.0), (0.5, 1.1), (0.4, 1.0), (0.9, 0.1), (0.9, 0.1), (0.9, 0.1)],
                1: [(0.1 * epoch, 1.0) for epoch in range(1, 7)]}


def rank_train_and_evaluate(rank: int, port: int, base_dir: Path, results) -> None:
    """One rank: evaluate() on the sharded loaders, a real 3-epoch DDP run, then an early-stopping run."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    import torch

    import engine.experiment
    import engine.trainer
    from config import read_command
    from engine.runtime import init_distributed

    outcome = {"rank": rank, "error": None}
    try:
        init_distributed(torch.device("cpu"))
        # evaluate() alone: this rank's shard, the whole set's metrics.
        model, data = tiny_model(), synthetic_data(distributed=True)
        for split in ("val", "test"):
            loader = getattr(data, f"{split}_loader")
            counts, hook = counting_samples(model)
            outcome[split] = engine.trainer.evaluate(model, loader, torch.device("cpu"), top5=True)
            hook.remove()
            outcome[f"{split}_seen"], outcome[f"{split}_indices"] = sum(counts), list(loader.sampler)

        # A real run: what every evaluation of the training loop saw, and the weights at the end of training.
        # (Trainer.fit evaluates with engine.trainer.evaluate_with; the final test of best.pt, in
        # engine.lifecycle.finish_training, is not counted.)
        real_evaluate, real_fit = engine.trainer.evaluate_with, engine.trainer.Trainer.fit
        passes = outcome["passes"] = []

        def counted_evaluate(spec, model, loader, *args, **kwargs):
            counts, hook = counting_samples(model)
            try:
                return real_evaluate(spec, model, loader, *args, **kwargs)
            finally:
                hook.remove()
                passes.append(sum(counts))

        def fit(self):
            status = real_fit(self)
            outcome.setdefault("fits", []).append((status, self.epoch, state_digest(self.raw_model.state_dict())))
            return status

        engine.trainer.evaluate_with, engine.trainer.Trainer.fit = counted_evaluate, fit
        args = [*TINY, "train.epochs=3", "train.plot_every=-1"]
        engine.experiment.run(read_command(args), base_dir / f"rank{rank}" / "trained")

        # Early stopping under DDP: each rank's validation is scripted differently; the ranks must stop together.
        # (Only Trainer.fit calls engine.trainer.evaluate_with, and under protocol=paper only to validate.)
        scripted = iter(SCRIPTED_VAL[rank])

        def scripted_evaluate(spec, model, loader, *args, **kwargs):
            result = real_evaluate(spec, model, loader, *args, **kwargs)
            result["accuracy"], result["loss"] = next(scripted)
            return result

        engine.trainer.evaluate_with = scripted_evaluate
        args = [*TINY, "train.epochs=6", "train.early_stop_patience=2", "protocol=paper", "train.plot_every=-1"]
        engine.experiment.run(read_command(args), base_dir / f"rank{rank}" / "early")
    except Exception as error:
        import traceback

        outcome["error"] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
    results.put(outcome)


def test_ddp_evaluates_disjoint_shards_keeps_ranks_identical_and_stops_them_together(tmp_path):
    import json

    import torch

    from config import compose_config, run_spec
    from engine.build import build_run_data
    from engine.checkpoint import load_checkpoint
    from engine.runtime import Dist
    from engine.trainer import evaluate

    outcomes = run_ranks(rank_train_and_evaluate, tmp_path)
    for rank in (0, 1):
        assert outcomes[rank]["error"] is None, outcomes[rank]["error"]
    cpu = torch.device("cpu")

    # 1. evaluate(): every rank saw its own half (rank::2, no sample twice, none left out) and returns the
    # metrics of the whole set, equal to one process evaluating all of it.
    data = synthetic_data(distributed=False)
    for split, size in (("val", 32), ("test", 32)):
        assert outcomes[0][f"{split}_indices"] == list(range(0, size, 2))
        assert outcomes[1][f"{split}_indices"] == list(range(1, size, 2))
        assert outcomes[0][f"{split}_seen"] == outcomes[1][f"{split}_seen"] == size // 2
        reference = evaluate(tiny_model(), getattr(data, f"{split}_loader"), cpu, top5=True)
        for rank in (0, 1):
            got = outcomes[rank][split]
            assert (got["accuracy"], got["accuracy_top5"]) == (reference["accuracy"], reference["accuracy_top5"])
            assert got["loss"] == pytest.approx(reference["loss"], rel=1e-6)

    # 2. The 3-epoch run: both ranks end with identical weights and buffers.
    (status0, epochs0, digest0), (status1, epochs1, digest1) = outcomes[0]["fits"][0], outcomes[1]["fits"][0]
    assert (status0, epochs0) == (status1, epochs1) == ("completed", 3)
    assert digest0.keys() == digest1.keys() and len(digest0) > 0
    assert [name for name in digest0 if digest0[name] != digest1[name]] == []
    # Every pass of the training loop saw half of the 32 samples: 3 validation passes and, protocol=clean,
    # one test pass per epoch that improved validation.
    run_dir = tmp_path / "rank0" / "trained"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    improving = [line["epoch"] for line in lines if "accuracy_test" in line]
    assert improving and improving[0] == 1
    for rank in (0, 1):
        assert outcomes[rank]["passes"] == [16] * (3 + len(improving))
    # The logged validation metrics of the last epoch are those of one process evaluating last.pt on all of it.
    cfg = compose_config([*TINY, "train.epochs=3"])
    full = build_run_data(run_spec(cfg), cpu, Dist())
    model = tiny_model()
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    reference = evaluate(model, full.val_loader, cpu)
    assert lines[-1]["accuracy_val"] == reference["accuracy"]
    assert lines[-1]["loss_val"] == pytest.approx(reference["loss"], rel=1e-6)

    # 3. Early stopping on rank 0's validation: patience 2 after the best epoch 1, on both ranks.
    for rank in (0, 1):
        status, epochs, _ = outcomes[rank]["fits"][1]
        assert (status, epochs) == ("early_stopped", 3), rank
    early = json.loads((tmp_path / "rank0" / "early" / "summary.json").read_text())
    assert (early["status"], early["epochs_completed"], early["best_epoch"]) == ("early_stopped", 3, 1)
