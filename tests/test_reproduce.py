"""experiments/reproduce.py: a table in one command, with the real submitit_local launcher; pre-emption by
SIGTERM, resume on relaunch, finished runs not retrained, the same numbers as an uninterrupted sweep."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = [sys.executable, str(ROOT / "experiments" / "reproduce.py")]
# The FlexTCN row of the dev table, 2 seeds, 6 short epochs: long enough to be interrupted mid-run.
SWEEP = ["dev", "--presets", "dev/mnist1d_flextcn", "--seeds", "0,1", "train.epochs=6", "device=cpu",
         "wandb.mode=disabled", "dataset_params.num_workers=0"]
RESULTS = ("test_accuracy", "best_test_accuracy", "best_val_accuracy", "epochs_completed", "kernel_sizes")


def reproduce(*args: str, out: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*REPRODUCE, *args, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def run_dir(out: Path, seed: int) -> Path:
    return out / "dev" / "dev" / "mnist1d_flextcn" / f"seed{seed}"


def summary(out: Path, seed: int) -> dict:
    return json.loads((run_dir(out, seed) / "summary.json").read_text())


def epochs_logged(out: Path, seed: int) -> list[int]:
    path = run_dir(out, seed) / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.exists() else []


def test_dry_run_lists_table3_with_the_published_numbers(tmp_path):
    done = reproduce("t3", "--dry-run", out=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("  t3_")]
    assert len(lines) == 36  # 12 presets x 3 seeds
    assert len({line.split()[0] for line in lines}) == 12
    flexnet7 = [line for line in lines if line.split()[0] == "t3_cifar10_flexnet7"]
    assert [line.split()[2] for line in flexnet7] == ["0", "1", "2"]
    assert all("missing" in line and "92.20 +- 0.10" in line for line in flexnet7)
    assert not (tmp_path / "t3").exists()  # a dry run writes nothing


def test_bad_arguments_are_one_message(tmp_path):
    for args, fragment in ((["t5"], "invalid choice"), (["dev", "--presets", "t3_cifar10_flexnet7"], "not in table dev"),
                           (["dev", "--seeds", "a,b"], "--seeds")):
        done = reproduce(*args, out=tmp_path)
        assert done.returncode == 2 and fragment in done.stderr and "Traceback" not in done.stderr, done.stderr


def _submitit_tasks(out: Path) -> list[int]:
    """PIDs of the submitit task processes (the runs) of the sweep below ``out``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "submitit.core._submit" in command and str(out) in command:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow  # about two minutes: three sweeps of real processes (python -m pytest -q -m slow)
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the submitit task processes through /proc")
def test_submitit_sweep_survives_sigterm_and_resumes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    reference, out = tmp_path / "reference", tmp_path / "results"
    done = reproduce(*SWEEP, "--launcher", "local", out=reference)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    # Launch with the real submitit_local launcher; SIGTERM every run once one of them has finished an epoch.
    process = subprocess.Popen([*REPRODUCE, *SWEEP, "--launcher", "submitit_local", "--out", str(out)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not any(len(epochs_logged(out, s)) >= 1 for s in (0, 1)):
        time.sleep(0.2)
    tasks = _submitit_tasks(out)
    assert tasks, "no running submitit task found"
    for pid in tasks:
        os.kill(pid, signal.SIGTERM)
    log, _ = process.communicate(timeout=240)
    assert process.returncode != 0  # a run was stopped: the table is incomplete and says so
    stopped = [s for s in (0, 1) if summary(out, s)["status"] == "preempted"]
    assert stopped, log[-3000:]
    for seed in stopped:
        assert 1 <= summary(out, seed)["epochs_completed"] < 6
        assert epochs_logged(out, seed) == list(range(1, summary(out, seed)["epochs_completed"] + 1))
    finished = [s for s in (0, 1) if s not in stopped]
    mtimes = {s: (run_dir(out, s) / "checkpoints" / "last.pt").stat().st_mtime_ns for s in finished}
    assert "not done" in log and "Launch the same command again" in log

    done = reproduce(*SWEEP, "--launcher", "submitit_local", out=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for seed in (0, 1):
        assert epochs_logged(out, seed) == [1, 2, 3, 4, 5, 6]  # the stopped runs continued, nothing twice
        ours, theirs = summary(out, seed), summary(reference, seed)
        assert ours["status"] == "completed"
        assert {k: ours[k] for k in RESULTS} == {k: theirs[k] for k in RESULTS}
    for seed, mtime in mtimes.items():  # finished runs are not retrained
        assert (run_dir(out, seed) / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime
    table = (out / "dev" / "table.md").read_text()
    assert "| dev/mnist1d_flextcn |" in table and "0,1 (2)" in table
    assert (out / "dev" / "table.png").stat().st_size > 1000 and (out / "dev" / "table.csv").is_file()


@pytest.mark.parametrize("table, presets", [
    ("t6", ["t6_imagenet32_flexnet5"]),
    ("t7", ["t7_crossres_imagenetk_flexnet5", "t7_crossres_imagenetk_njet", "t7_crossres_imagenetk_resnet32"]),
    ("t9", ["t9_stl10_flexnet7", "t9_stl10_resnet10", "t9_stl10_resnet18"]),
])
def test_dry_run_lists_the_imagenet_and_stl10_tables(table, presets, tmp_path, capsys):
    """Tables 6, 7 and 9 (in-process: a subprocess per table would mostly import torch); Table 7 runs with
    run_crossres.py, the others with run_experiment.py."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import reproduce as script

    assert script.table_presets(script.TABLES[table]) == presets
    assert script.main([table, "--dry-run", "--out", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"  {table}_")]
    assert sorted({line.split()[0] for line in lines}) == presets and len(lines) == 3 * len(presets)
    assert all("missing" in line for line in lines) and not (tmp_path / table).exists()
    entries = {script.entry_point(p) for p in presets}
    assert entries == {"run_crossres.py" if table == "t7" else "run_experiment.py"}
    if table == "t6":
        assert "test_accuracy_top5 47.70 +- 0.60" in lines[0]
