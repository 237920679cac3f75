"""What a run prints, through the real entry points in subprocesses.

Redirected (SLURM, CI, ``> log.txt 2>&1``: here a pipe) a run prints no progress bars, one line per epoch
with the numbers of its ``metrics.jsonl`` line, and one final summary line with the numbers of
``summary.json``. On a terminal (here a pseudo-terminal) the live tqdm bars are shown.
"""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import TINY_RUN

ROOT = Path(__file__).resolve().parents[1]
TINY = [*TINY_RUN, "train.plot_every=-1"]
CROSSRES_TINY = ["experiment=dev/crossres_cifar10_tiny", "dataset_params.synthetic=true", "cross_res.source_res=8",
                 "cross_res.target_res=16", "train.epochs=1", "cross_res.finetune_epochs=1", "train.batch_size=16",
                 "train.limit_train_batches=1", "train.limit_eval_batches=1", "device=cpu", "wandb.mode=disabled",
                 "dataset_params.num_workers=0", "train.plot_every=-1"]

# Pieces of a tqdm bar as it appears in a file: "test:   0%|          | 0/2 [00:00<?, ?it/s]".
BAR_FRAGMENTS = [re.compile(p) for p in (r"\d+%\|", r"\|\s*\d+/\d+\s*\[", r"\bit/s\b", r"\bs/it\b", "\r")]
NUMBER = r"(-?[\d.]+(?:e[-+]?\d+)?)"
EPOCH_LINE = re.compile(rf"^epoch (\d+)/(\d+) \| train loss {NUMBER} acc {NUMBER} \| val acc {NUMBER}"
                        rf"(?: \| test acc {NUMBER})? \| lr {NUMBER}(?: \| kernel min/mean/max (\d+)/{NUMBER}/(\d+))?"
                        rf" \| {NUMBER}s( \| new best val acc)?$")
SUMMARY_LINE = re.compile(r"^summary: (.*)$")


def redirected(script: str, args: list[str], cwd: Path) -> str:
    """stdout and stderr of the entry point into one pipe, as ``> log.txt 2>&1`` does."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


def assert_no_bars(log: str) -> None:
    for pattern in BAR_FRAGMENTS:
        found = pattern.search(log)
        assert found is None, f"progress-bar fragment {pattern.pattern!r} in the log:\n{log}"


def epoch_lines(log: str) -> list[re.Match]:
    return [m for m in map(EPOCH_LINE.match, log.splitlines()) if m]


def summary_values(log: str) -> dict:
    """The one ``summary: key=value ...`` line, parsed."""
    lines = [m.group(1) for m in map(SUMMARY_LINE.match, log.splitlines()) if m]
    assert len(lines) == 1, log
    values = {}
    for item in lines[0].split():
        if "=" in item:
            key, value = item.split("=", 1)
            values[key] = value
    return values


def assert_epoch_line_matches(line: re.Match, record: dict, epochs: int) -> None:
    epoch, total, loss, acc, val, test, lr, k_min, k_mean, k_max, seconds, _ = line.groups()
    assert (int(epoch), int(total)) == (record["epoch"], epochs)
    assert float(loss) == pytest.approx(record["loss_train"], abs=1e-4)
    assert float(acc) == pytest.approx(record["accuracy_train"], abs=1e-4)
    assert float(val) == pytest.approx(record["accuracy_val"], abs=1e-4)
    if "accuracy_test" in record:
        assert float(test) == pytest.approx(record["accuracy_test"], abs=1e-4)
    else:
        assert test is None
    assert float(lr) == pytest.approx(record["lr"], rel=1e-2)
    taps = [max(size) for size in record["kernel_sizes"].values() if size]
    assert taps, record["kernel_sizes"]
    assert (int(k_min), int(k_max)) == (min(taps), max(taps))
    assert float(k_mean) == pytest.approx(sum(taps) / len(taps), abs=0.05)
    assert float(seconds) == pytest.approx(record["epoch_time_s"], abs=0.06)


def test_redirected_run_prints_one_line_per_epoch_and_a_summary_without_bars(tmp_path):
    run_dir = tmp_path / "run"
    log = redirected("run_experiment.py", [*TINY, "train.epochs=2", f"hydra.run.dir={run_dir}"], tmp_path)
    assert_no_bars(log)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    lines = epoch_lines(log)
    assert [int(m.group(1)) for m in lines] == [1, 2], log
    assert sum(line.startswith("epoch ") for line in log.splitlines()) == 2, log  # no other epoch-ish lines
    for line, record in zip(lines, records):
        assert_epoch_line_matches(line, record, epochs=2)
    summary = json.loads((run_dir / "summary.json").read_text())
    printed = summary_values(log)
    assert printed["status"] == summary["status"] == "completed"
    assert int(printed["epochs_completed"]) == summary["epochs_completed"] == 2
    for key in ("test_accuracy", "best_val_accuracy", "best_test_accuracy"):
        if summary.get(key) is None:  # e.g. best_test_accuracy where the test set is not evaluated every epoch
            assert key not in printed, key
        else:
            assert float(printed[key]) == pytest.approx(summary[key], abs=1e-4), key
    assert log.rstrip().splitlines()[-1].startswith("summary: ")  # the last thing the run says

    # Evaluating its checkpoint (train.do=False) follows the same rule: no bars, one summary line.
    best = run_dir / "checkpoints" / "best.pt"
    log = redirected("run_experiment.py", ["train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                                           "device=cpu", "wandb.mode=disabled", "train.plot_every=-1",
                                           f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert_no_bars(log)
    evaluated = json.loads((tmp_path / "eval" / "summary.json").read_text())
    printed = summary_values(log)
    assert printed["status"] == "evaluated"
    assert float(printed["test_accuracy"]) == pytest.approx(evaluated["test_accuracy"], abs=1e-4)


def test_redirected_crossres_run_prints_epoch_lines_of_both_phases_without_bars(tmp_path):
    log = redirected("run_crossres.py", [*CROSSRES_TINY, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert_no_bars(log)
    assert [(int(m.group(1)), int(m.group(2))) for m in epoch_lines(log)] == [(1, 1), (1, 1)], log  # source, finetune
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    printed = summary_values(log)
    assert printed["status"] == summary["status"] == "completed"
    for key in ("source_accuracy", "ootb_accuracy", "final_accuracy", "test_accuracy"):
        assert float(printed[key]) == pytest.approx(summary[key], abs=1e-4), key


def test_terminal_run_shows_live_bars(tmp_path):
    """On a (pseudo-)terminal the bars are drawn; the epoch lines are printed as well."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run_experiment.py"), *TINY, "train.epochs=1",
                                f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                               stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        code = process.wait(timeout=300)
    output = b"".join(chunks).decode(errors="replace")
    assert code == 0, output[-3000:]
    assert re.search(r"epoch 1/1 train:\s+\d+%\|", output), output  # a bar of the training loop
    assert re.search(r"\|\s*\d+/\d+ \[", output), output
    assert len(epoch_lines(output.replace("\r", "\n"))) == 1, output


@pytest.mark.slow
def test_redirected_torchrun_prints_each_epoch_line_once(tmp_path):
    """Under DDP only rank 0 prints the epoch and summary lines (two processes share the log)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(ROOT / "run_experiment.py"), *TINY, "train.epochs=2", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert_no_bars(done.stdout)
    assert [int(m.group(1)) for m in epoch_lines(done.stdout)] == [1, 2], done.stdout
    assert summary_values(done.stdout)["status"] == "completed"
