"""The real entry point, in subprocesses: exit codes and messages, the run directory Hydra and the
engine write, W&B offline without network or credentials, and torchrun with two CPU processes.

Each subprocess pays ~3-5 s of imports, so there are few of them. They run with cwd = a temporary
directory, so that nothing can land in the repository.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_RUN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "run_experiment.py")
# The tiny run, with DataLoader workers as a user's run has them (num_workers=-1: from the CPU count).
TINY = [o for o in TINY_RUN if not o.startswith("dataset_params.num_workers=")]


def run_entry(args: list[str], cwd: Path, *, env: dict | None = None, launcher: list[str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess:
    command = [sys.executable, *(launcher or []), SCRIPT, *args]
    return subprocess.run(command, cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=timeout)


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


# --- messages and exit codes -------------------------------------------------------------------------------
def test_misspelt_key_exits_2_naming_the_key(tmp_path):
    result = run_entry(["net.no_hiden=3", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert_clean_failure(result, 2, "net.no_hiden", "Did you mean 'net.no_hidden'")
    assert not (tmp_path / "run").exists()  # stopped before Hydra made a run directory


def test_value_of_wrong_type_names_the_key(tmp_path):
    result = run_entry(["train.epochs=abc", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    # Hydra's own composition error (exit 1): it names the full key and the value.
    assert_clean_failure(result, 1, "full_key: train.epochs", "'abc'")


def test_bad_value_exits_2_with_the_allowed_values(tmp_path):
    result = run_entry(["train.optimizer=Adm", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert_clean_failure(result, 2, "train.optimizer='Adm' is invalid", "Adam, AdamW, SGD, RMSprop",
                         "did you mean 'Adam'")
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error(tmp_path):
    result = run_entry([*TINY, "device=cuda", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert_clean_failure(result, 1, "device=cuda was requested but CUDA is not available")


def test_corrupt_checkpoint_exits_1_with_one_message(tmp_path):
    corrupt = tmp_path / "best.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive" * 10)
    result = run_entry(["train.do=False", "pretrained=True", f"pretrained_params.filepath={corrupt}", "device=cpu",
                        f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert_clean_failure(result, 1, f"checkpoint '{corrupt}' could not be read")


# --- a full run, with W&B offline -------------------------------------------------------------------------
def offline_env(home: Path) -> dict:
    """No credentials anywhere (HOME without .netrc, no API key) and no reachable W&B server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    home.mkdir()
    env.update(HOME=str(home), WANDB_BASE_URL="http://127.0.0.1:9", WANDB_SILENT="true", NETRC=str(home / ".netrc"))
    return env


@pytest.mark.parametrize("mode", ["offline", "auto"])
def test_run_with_wandb_offline_without_network(mode, tmp_path):
    run_dir = tmp_path / "run"
    result = run_entry([*TINY, "train.epochs=2", f"wandb.mode={mode}", f"hydra.run.dir={run_dir}"], tmp_path,
                       env=offline_env(tmp_path / "home"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B logging is off" not in result.stderr  # W&B did start (offline), it was not skipped
    # What the run directory holds (DESIGN.md, Contracts).
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["wandb"]["mode"] == mode and config["net"]["no_hidden"] == 8
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    for key in ("no_params", "best_val_accuracy", "test_accuracy", "best_test_accuracy", "kernel_sizes", "wall_time_s"):
        assert key in summary, key
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    offline_runs = list((run_dir / "wandb").glob("wandb/offline-run-*"))
    assert len(offline_runs) == 1, list((run_dir / "wandb").rglob("*"))[:20]
    assert list(offline_runs[0].glob("*.wandb"))  # the run's log, ready for `wandb sync`
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "run"]  # nothing outside the run directory


# --- torchrun: two CPU processes, gloo ----------------------------------------------------------------------
def test_torchrun_two_processes_rank_zero_io_and_resume(tmp_path):
    """Each rank is given its own Hydra run directory (run_0 / run_1, as happens when the clock ticks
    between the ranks' starts): only rank 0 may write, and rank 1 must resume from rank 0's checkpoint."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [*TINY, "wandb.mode=disabled", f"hydra.run.dir={tmp_path}/run_${{oc.env:RANK,0}}"]
    first = run_entry([*args, "train.epochs=1"], tmp_path, launcher=launcher, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "run_0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_0"]  # rank 1 made no directory
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    # 64 synthetic samples shared by 2 ranks (DistributedSampler), batch 16: 2 steps per epoch.
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["global_step"] == 2

    # Resume in the same directory and run to the end. (Both ranks stopping early at the same epoch is
    # tested with scripted validation results in test_engine_distributed.py: here it would depend on how
    # the model happens to train.)
    second = run_entry([*args, "train.epochs=3", "train.resume=true"], tmp_path, launcher=launcher, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_0"]
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert (summary["status"], summary["epochs_completed"]) == ("completed", 3)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (3, 6)
