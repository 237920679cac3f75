"""Two processes on the CPU (gloo), spawned with torchrun's environment variables, calling the engine
directly: the ranks must take the same decisions even when only one of them sees a problem.
(test_run_experiment.py runs the real torchrun launcher.)
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import time
from pathlib import Path

TINY = ["experiment=dev/mnist1d_quick", "dataset_params.synthetic=true", "net.no_hidden=8", "net.no_blocks=1",
        "kernel.no_hidden=8", "train.batch_size=16", "wandb.mode=disabled", "device=cpu"]
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
    import engine.trainer
    from config import compose_config, explicit_keys

    real_regularizers = engine.trainer.Regularizers.__call__
    calls = []

    def poisoned(self, model):
        calls.append(1)
        total, aa = real_regularizers(self, model)
        return (float("nan") if rank == 1 and len(calls) == NAN_AT_CALL else total), aa

    engine.trainer.Regularizers.__call__ = poisoned
    seeds = []
    real_seed_everything = engine.experiment.seed_everything
    engine.experiment.seed_everything = lambda seed, *a: (seeds.append(seed), real_seed_everything(seed, *a))[1]

    args = [*TINY, "train.epochs=3", "seed=-1"]
    outcome = {"rank": rank, "error": None}
    try:
        # Each rank gets its own directory, as Hydra would give them; the engine must use rank 0's.
        engine.experiment.run(compose_config(args), base_dir / f"rank{rank}", explicit_keys(args))
    except Exception as error:  # reported to the test, which checks the type and message
        outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["seeds"] = seeds
    results.put(outcome)


def test_ranks_agree_on_seed_run_dir_and_a_nan_seen_by_one_rank(tmp_path):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=rank_main, args=(rank, port, tmp_path, results)) for rank in range(WORLD_SIZE)]
    for process in processes:
        process.start()
    outcomes = {}
    deadline = time.monotonic() + 180
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
    assert sorted(outcomes) == [0, 1], f"a rank hung or died: {outcomes}"

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
