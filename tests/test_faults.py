"""Fault injection on the real entry points, each in a subprocess: kill -9 in the middle of an epoch and
while a checkpoint is being written (then resume), unreadable / malicious / foreign checkpoints, an
unwritable run directory, a diverging run, and W&B without network or credentials.

The tests assert what a user sees: the exit code, one message on stderr naming the bad file, layer,
directory or step (never a traceback), what the run directory holds afterwards and, for resumed runs,
the same final numbers and weights as an uninterrupted run.

The kill tests need the process at a known point when the SIGKILL arrives. They start the entry point
through ``FAULT_BOOTSTRAP`` (below): it runs ``run_experiment.py`` unchanged as ``__main__`` after wrapping
one function so that the process writes a marker file and waits - before a given training step, or just
before the temp file of a checkpoint is renamed into place (written, not yet published). The project
itself has no test hooks.

A subprocess costs ~4 s of imports on a 2-core machine, so the runs are tiny (3 epochs of 3 steps on
synthetic data, one thread each), one uninterrupted reference run is shared, and independent runs go in
parallel, in four groups: the uninterrupted runs (with and without W&B), the two kills, their resumes,
and every run that must stop with an error.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "run_experiment.py")
TINY = [*TINY_RUN, "train.epochs=3", "train.limit_train_batches=3", "train.limit_eval_batches=1",
        "train.plot_every=-1"]
STEPS_PER_EPOCH = 3  # train.limit_train_batches

# Runs ``sys.argv[1]`` (an entry point) as __main__ with the remaining arguments, after installing the
# pauses that FAULT_PAUSE_BEFORE_STEP=N (before the N-th training step of the process) and
# FAULT_PAUSE_PUBLISHING=NAME:N (before the N-th os.replace of a temp file onto checkpoints/NAME) ask for.
FAULT_BOOTSTRAP = r"""
import os, runpy, sys, time
from pathlib import Path

script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
marker = Path(os.environ["FAULT_MARKER"])
replace = os.replace

def pause(where):
    Path(f"{marker}.tmp").write_text(where)
    replace(f"{marker}.tmp", marker)  # whole, so the test never reads it half-written
    time.sleep(600)  # until the test kills the process

import engine.trainer

pause_step = int(os.environ.get("FAULT_PAUSE_BEFORE_STEP", "0"))
training_loss, steps = engine.trainer.training_loss, [0]

def paused_training_loss(*args, **kwargs):
    steps[0] += 1
    if steps[0] == pause_step:
        pause(f"before training step {pause_step}")
    return training_loss(*args, **kwargs)

engine.trainer.training_loss = paused_training_loss

name, _, count = os.environ.get("FAULT_PAUSE_PUBLISHING", ":0").partition(":")
publishes = [0]

def paused_replace(src, dst, *args, **kwargs):
    if Path(dst).name == name and Path(dst).parent.name == "checkpoints":
        publishes[0] += 1
        if publishes[0] == int(count):
            pause(f"publishing {src}")
    return replace(src, dst, *args, **kwargs)

os.replace = paused_replace
runpy.run_path(script, run_name="__main__")
"""


# --- helpers ---------------------------------------------------------------------------------------------
def entry_env(**extra: str) -> dict:
    """The environment of a test subprocess: the caller's, without its W&B settings, one thread (the models
    are tiny and runs go in parallel: more threads only spin; a quarter less CPU time per run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def entry_command(args: list[str]) -> list[str]:
    return [sys.executable, SCRIPT, *args]


def run_command(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 240):
    """One subprocess with stdin closed; returns (CompletedProcess, wall seconds)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env or entry_env(), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=timeout)
    return result, time.perf_counter() - started


def run_concurrently(jobs: list[dict], cwd: Path) -> list[tuple[subprocess.CompletedProcess, float]]:
    """Independent runs at the same time, each ``run_command(cwd=cwd, **job)``. With one thread per run
    (entry_env), two cores run two of them about as fast as one alone."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: run_command(cwd=cwd, **job), jobs))


def stop(procs) -> None:
    """Kill whatever is still running (a failed test must not leave runs behind)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def start_paused(args: list[str], marker: Path, **pause: str) -> subprocess.Popen:
    """Start the entry point through FAULT_BOOTSTRAP with the given pause; it writes ``marker`` when it waits."""
    marker.unlink(missing_ok=True)
    with marker.with_suffix(".log").open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-c", FAULT_BOOTSTRAP, SCRIPT, *args], cwd=marker.parent,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=entry_env(FAULT_MARKER=str(marker), **pause))


def kill_once_paused(proc: subprocess.Popen, marker: Path) -> str:
    """SIGKILL ``proc`` as soon as it waits at its pause; returns where that was."""
    deadline = time.monotonic() + 240
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            log = marker.with_suffix(".log").read_text()[-3000:]
            pytest.fail(f"the run never reached its pause (exit code {proc.returncode}):\n{log}")
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler, no cleanup, like the OOM killer or a lost node
    proc.wait(timeout=60)
    assert proc.returncode == -9
    return marker.read_text()


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 1, no traceback anywhere, and stderr is exactly one line: the message, naming ``needles``."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def metric_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# Numbers of each epoch that must match exactly (not the timings).
EPOCH_KEYS = ("epoch", "loss_train", "accuracy_train", "loss_val", "accuracy_val", "lr", "best_val_accuracy",
              "kernel_sizes")
SUMMARY_KEYS = ("status", "epochs_completed", "best_epoch", "best_val_accuracy", "test_accuracy",
                "best_test_accuracy", "test_loss", "no_params", "kernel_sizes")


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """The resumed run ended exactly where the uninterrupted one did: summary, every epoch, the weights."""
    got, want = summary(run_dir), summary(reference)
    assert {k: got.get(k) for k in SUMMARY_KEYS} == {k: want.get(k) for k in SUMMARY_KEYS}
    assert [{k: line.get(k) for k in EPOCH_KEYS} for line in metric_lines(run_dir)] == \
        [{k: line.get(k) for k in EPOCH_KEYS} for line in metric_lines(reference)]
    for name in ("last.pt", "best.pt"):
        resumed, uninterrupted = load(run_dir / "checkpoints" / name), load(reference / "checkpoints" / name)
        assert resumed["epoch"] == uninterrupted["epoch"] and resumed["global_step"] == uninterrupted["global_step"]
        assert resumed["model"].keys() == uninterrupted["model"].keys()
        for key, value in uninterrupted["model"].items():  # tensors, and layers' extra state (dicts)
            assert torch.equal(resumed["model"][key], value) if torch.is_tensor(value) else \
                resumed["model"][key] == value, key
    # No temp file of a killed write is left behind.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted runs of TINY, at once: with W&B disabled (``dir``: the run every resumed run must
    equal) and with wandb.mode=online / offline without network or credentials (``wandb``: mode ->
    (run dir, CompletedProcess, seconds added to the W&B-less run's wall time)). One thread each, started
    together: the wall times compare even on a busy machine."""
    cwd = tmp_path_factory.mktemp("reference")
    jobs = [{"command": entry_command([*TINY, f"hydra.run.dir={cwd / 'run'}"])}]
    jobs += [{"command": entry_command([*TINY, f"wandb.mode={mode}", f"hydra.run.dir={cwd / mode}"]),
              "env": no_wandb_anywhere(cwd / f"home_{mode}")} for mode in WANDB_MODES]
    (result, wall), *with_wandb = run_concurrently(jobs, cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(cwd / "run")["epochs_completed"] == 3
    return {"dir": cwd / "run",
            "wandb": {mode: (cwd / mode, run, run_wall - wall) for mode, (run, run_wall) in zip(WANDB_MODES, with_wandb)}}


# --- 1. kill -9, then resume --------------------------------------------------------------------------------
KILLS = {
    "mid_epoch": {"FAULT_PAUSE_BEFORE_STEP": str(STEPS_PER_EPOCH + 2)},  # the second step of epoch 2
    "checkpoint_write": {"FAULT_PAUSE_PUBLISHING": "last.pt:2"},  # epoch 2's last.pt: written, not yet renamed
}


@pytest.fixture(scope="module")
def killed_runs(reference, tmp_path_factory) -> dict:
    """Both kills at once, then both resumes at once: what each run directory held after the SIGKILL, and
    the resume. ``mid_epoch`` resumes with train.resume=auto in its directory; ``checkpoint_write`` by the
    path of its last.pt from another directory (the run must continue in its own)."""
    cwd = tmp_path_factory.mktemp("killed")
    run_dirs = {name: cwd / name for name in KILLS}
    procs = {name: start_paused([*TINY, f"hydra.run.dir={run_dirs[name]}"], cwd / f"{name}.paused", **pause)
             for name, pause in KILLS.items()}
    try:
        wheres = {name: kill_once_paused(proc, cwd / f"{name}.paused") for name, proc in procs.items()}
    finally:
        stop(procs.values())
    runs = {}
    for name, where in wheres.items():
        checkpoints = run_dirs[name] / "checkpoints"
        runs[name] = {"dir": run_dirs[name], "where": where, "last_epoch": load(checkpoints / "last.pt")["epoch"],
                      "epochs_logged": [line["epoch"] for line in metric_lines(run_dirs[name])],
                      "status": summary(run_dirs[name])["status"],
                      "temp_files": sorted(str(p) for p in checkpoints.glob("*.tmp"))}
    resume = {"mid_epoch": [f"hydra.run.dir={run_dirs['mid_epoch']}", "train.resume=auto"],
              "checkpoint_write": [f"hydra.run.dir={cwd / 'elsewhere'}",
                                   f"train.resume={run_dirs['checkpoint_write'] / 'checkpoints' / 'last.pt'}"]}
    results = run_concurrently([{"command": entry_command([*TINY, *resume[name]])} for name in KILLS], cwd)
    for name, (result, _) in zip(KILLS, results):
        runs[name]["resumed"] = result
    return runs


def test_kill_mid_epoch_then_resume_auto_equals_uninterrupted_run(killed_runs, reference):
    run = killed_runs["mid_epoch"]
    assert run["where"] == f"before training step {STEPS_PER_EPOCH + 2}"
    assert run["last_epoch"] == 1 and run["epochs_logged"] == [1]  # epoch 2 was cut short
    assert run["status"] == "running"  # what a killed process leaves: not "completed"
    resumed = run["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {run['dir'] / 'checkpoints' / 'last.pt'} (epoch 1)" in resumed.stdout
    assert_same_run(run["dir"], reference["dir"])


def test_kill_while_writing_a_checkpoint_keeps_the_last_one_and_resumes_exactly(killed_runs, reference):
    run = killed_runs["checkpoint_write"]
    assert len(run["temp_files"]) == 1 and run["temp_files"][0] in run["where"]  # killed before the rename
    assert Path(run["temp_files"][0]).name.startswith(".last.pt.")  # datasets.paths.atomic_write's temp file
    assert run["last_epoch"] == 1  # the previous checkpoint is intact
    assert run["epochs_logged"] == [1, 2]  # epoch 2 was logged, its checkpoint not published
    resumed = run["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"(epoch 1) in {run['dir']}" in resumed.stdout
    assert_same_run(run["dir"], reference["dir"])  # also: the killed write's temp file is gone


# --- 2. unreadable and malicious checkpoints ---------------------------------------------------------------
class CodeOnUnpickling:
    """Unpickling this object runs ``code`` (pickle's __reduce__ protocol): what a malicious checkpoint does."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def write_bad_checkpoints(good: Path, folder: Path, marker: Path) -> dict[str, Path]:
    folder.mkdir()
    content = good.read_bytes()
    files = {"truncated": content[: len(content) // 2],
             # Seeded bytes on which torch's weights-only unpickler raises IndexError, not UnpicklingError.
             "random": random.Random(2).randbytes(4096)}
    paths = {kind: folder / f"{kind}.pt" for kind in [*files, "malicious"]}
    for kind, data in files.items():
        paths[kind].write_bytes(data)
    # A checkpoint of the right format whose weights would, when loaded with plain pickle, write `marker`.
    torch.save({"format": load(good)["format"], "model": CodeOnUnpickling(f"open({str(marker)!r}, 'w').write('ran')")},
               paths["malicious"])
    return paths


HOW_GIVEN = {"resume": lambda path: [f"train.resume={path}"],
             "evaluate": lambda path: ["train.do=False", "pretrained=True", f"pretrained_params.filepath={path}"]}
BAD_KINDS = ("truncated", "random", "malicious")


OTHER_MODEL = ["net.no_hidden=12", "net.no_blocks=2"]  # wider and deeper than TINY
# SGD at lr 1, multiplied by 1e30 after epoch 1: epoch 2's first step blows the weights up, the loss of its
# second step is NaN.
DIVERGING = ["train.optimizer=SGD", "train.lr=1", "train.scheduler=multistep", "train.scheduler_params.decay_steps=1",
             "train.scheduler_params.decay_factor=1e-30", "train.scheduler_params.warmup_epochs=0", "train.log_every=1"]


def without_root_privileges() -> list[str] | None:
    """A command prefix under which permissions apply: none needed for a normal user; as root (which ignores
    them) setpriv without CAP_DAC_OVERRIDE, if that works here; None if there is no way."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def stopping_runs(reference, tmp_path_factory) -> dict:
    """Every run that must stop with one error message, all at once. Keys: (file kind, how given) for the
    bad checkpoints and for TINY's checkpoint given to a run of OTHER_MODEL; "unwritable" (a run directory
    in a folder without write permission; absent where permissions cannot be enforced); "diverging"."""
    cwd = tmp_path_factory.mktemp("stopping")
    marker = cwd / "code_ran"
    paths = write_bad_checkpoints(reference["dir"] / "checkpoints" / "last.pt", cwd / "files", marker)
    paths["other_model"] = cwd / "foreign" / "checkpoints" / "last.pt"
    paths["other_model"].parent.mkdir(parents=True)
    shutil.copy(reference["dir"] / "checkpoints" / "last.pt", paths["other_model"])
    run_dirs = {(kind, how): cwd / f"run_{kind}_{how}" for kind in [*BAD_KINDS, "other_model"] for how in HOW_GIVEN}
    jobs = {(kind, how): entry_command([*TINY, *(OTHER_MODEL if kind == "other_model" else []),
                                        *HOW_GIVEN[how](paths[kind]), f"hydra.run.dir={run_dir}"])
            for (kind, how), run_dir in run_dirs.items()}
    run_dirs["diverging"] = cwd / "diverging"
    jobs["diverging"] = entry_command([*TINY, *DIVERGING, f"hydra.run.dir={run_dirs['diverging']}"])
    prefix = without_root_privileges()
    locked = cwd / "locked"
    locked.mkdir(mode=0o500)
    if prefix is not None:  # a run directory named by Hydra's own interpolation, as users write them
        run_dirs["unwritable"] = locked / "run_run_experiment"
        jobs["unwritable"] = [*prefix, *entry_command([*TINY, f"hydra.run.dir={locked}/run_${{hydra:job.name}}"])]
    contents = {kind: path.read_bytes() for kind, path in paths.items()}
    try:
        results = run_concurrently([{"command": command} for command in jobs.values()], cwd)
    finally:
        locked.chmod(0o700)  # so that pytest can clean up
    return {"paths": paths, "contents": contents, "marker": marker, "run_dirs": run_dirs, "locked": locked,
            "results": {name: result for name, (result, _) in zip(jobs, results)}}


@pytest.mark.parametrize("how", HOW_GIVEN)
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_checkpoint_is_one_message_and_writes_nothing(kind, how, stopping_runs):
    runs = stopping_runs
    path = runs["paths"][kind]
    message = assert_one_error_line(runs["results"][kind, how], f"checkpoint '{path}'")
    if kind == "malicious":
        assert "exec" in message and "could run arbitrary code" in message  # names what it refused, and why
    else:
        assert "could not be read: corrupt, truncated or not a PyTorch checkpoint" in message
    assert not runs["marker"].exists()  # the pickle's code never ran
    run_dir = runs["run_dirs"][kind, how]
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "summary.json").exists()
    assert path.read_bytes() == runs["contents"][kind]  # the bad file is left as it was


def test_load_checkpoint_turns_any_unreadable_file_into_one_checkpoint_error(tmp_path, recwarn):
    """In-process, many files: torch's unpickler fails on garbage with IndexError, KeyError, ... and warns
    about foreign pickle protocols; the caller must see one CheckpointError and nothing else."""
    import pickle

    from engine.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "code_ran"
    code = CodeOnUnpickling(f"open({str(marker)!r}, 'w').write('ran')")
    files = {f"random_{seed}": random.Random(seed).randbytes(4096) for seed in range(40)}
    files.update(empty=b"", raw_pickle=pickle.dumps({"model": code}, protocol=4), zip_header=b"PK\x03\x04" * 64)
    for name, data in files.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=re.escape(f"checkpoint '{path}'")):
            load_checkpoint(path)
    assert not marker.exists()
    assert [str(w.message) for w in recwarn] == []
    pickle.loads(files["raw_pickle"])  # the premise: plain unpickling does run the code
    assert marker.read_text() == "ran"


# --- 3. a checkpoint of another model ----------------------------------------------------------------------
@pytest.mark.parametrize("how", HOW_GIVEN)
def test_checkpoint_of_another_model_names_the_mismatched_layers(how, stopping_runs):
    """TINY's checkpoint for OTHER_MODEL (net.no_hidden 8 -> 12, net.no_blocks 1 -> 2): the message lists
    parameters with both shapes and the missing ones, a few of each, then how many more."""
    message = assert_one_error_line(stopping_runs["results"]["other_model", how], "do not fit the model")
    # e.g. "blocks.0.conv1.bias [8] in the checkpoint, [12] in the model"
    assert re.search(r"of another shape: [\w.]+ \[8(, \d+)*\] in the checkpoint, \[12(, \d+)*\] in the model", message)
    assert re.search(r"missing from the checkpoint: blocks\.1\.[\w.]+ \[\d+(, \d+)*\]", message), message
    assert re.search(r"and \d+ more", message), message
    assert message.count(" in the checkpoint, ") <= 3  # a few, not all of them
    checkpoint = stopping_runs["paths"]["other_model"]
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.pt"]  # the resume wrote nothing
    assert not (checkpoint.parent.parent / "summary.json").exists()
    assert not (stopping_runs["run_dirs"]["other_model", how] / "summary.json").exists()


# --- 4. an unwritable run directory ------------------------------------------------------------------------
def test_unwritable_run_directory_is_one_message_naming_it(stopping_runs):
    if "unwritable" not in stopping_runs["results"]:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    run_dir, locked = stopping_runs["run_dirs"]["unwritable"], stopping_runs["locked"]
    assert_one_error_line(stopping_runs["results"]["unwritable"], str(run_dir), f"{locked} is not writable",
                          "hydra.run.dir")
    assert not run_dir.exists()


# --- 5. a diverging run ------------------------------------------------------------------------------------
def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(stopping_runs):
    from config import run_spec, with_defaults
    from config.read import read_stored_model_spec
    from engine.build import build_run_model, input_meta
    from engine.checkpoint import load_checkpoint

    run_dir = stopping_runs["run_dirs"]["diverging"]
    assert_one_error_line(stopping_runs["results"]["diverging"], "loss became nan at epoch 2, step 2 (global step 5)",
                          "the last checkpoint is kept")
    assert summary(run_dir)["status"] == "diverged"
    assert [line["epoch"] for line in metric_lines(run_dir)] == [1]
    # last.pt is epoch 1's, finite, and loads into the model of its own config.
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == 1 and last["global_step"] == STEPS_PER_EPOCH
    assert all(torch.isfinite(value).all() for value in last["model"].values() if torch.is_tensor(value))
    spec = run_spec(with_defaults(last["config"]))
    assert read_stored_model_spec(last) == spec.model  # the stored model spec is that of its own config
    build_run_model(spec, input_meta(spec)).load_state_dict(last["model"])


# --- 6. W&B without network or credentials (the runs are part of the `reference` fixture) -------------------
WANDB_MODES = ("online", "offline")
# What W&B may add to a run on top of waiting for a server (WANDB_INIT_TIMEOUT_S): importing it, starting it
# offline, finishing. Measured 1-4 s on a busy 2-core machine; the rest is margin for a loaded one.
WANDB_START_S = 10


def no_wandb_anywhere(home: Path, **extra: str) -> dict:
    """No API key, a HOME without ~/.netrc or W&B settings, and a W&B server address that refuses at once."""
    home.mkdir()
    return entry_env(HOME=str(home), WANDB_BASE_URL="http://127.0.0.1:9", **extra)


def wandb_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.search(r"w&b|wandb", line, re.IGNORECASE)]


def test_wandb_online_without_network_or_key_is_one_warning_and_logs_offline(reference):
    run_dir, result, added = reference["wandb"]["online"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(run_dir)["status"] == "completed"
    lines = wandb_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-3000:]
    assert "No API key" in lines[0] and "logging offline" in lines[0], lines[0]
    assert len(list(run_dir.rglob("offline-run-*"))) == 1  # recorded for a later `wandb sync`
    print(f"W&B online without key or network added {added:.1f} s")
    assert added < WANDB_START_S  # no key: nothing to wait for


def test_wandb_offline_with_stdin_closed_finishes_without_a_word(reference):
    run_dir, result, added = reference["wandb"]["offline"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(run_dir)["status"] == "completed"
    assert wandb_lines(result.stderr) == [], result.stderr[-3000:]
    assert len(list(run_dir.rglob("offline-run-*"))) == 1
    print(f"W&B offline added {added:.1f} s")
    assert added < WANDB_START_S


@pytest.mark.slow
def test_wandb_online_with_key_but_no_server_waits_at_most_the_bound(tmp_path):
    """With an API key W&B retries the unreachable server until its init timeout, then the run logs offline."""
    from engine.logger import WANDB_INIT_TIMEOUT_S

    run_dir = tmp_path / "run"
    (control, control_wall), (result, wall) = run_concurrently([
        {"command": entry_command([*TINY, f"hydra.run.dir={tmp_path / 'control'}"])},
        {"command": entry_command([*TINY, "wandb.mode=online", f"hydra.run.dir={run_dir}"]),
         "env": no_wandb_anywhere(tmp_path / "home", WANDB_API_KEY="0" * 40)}], tmp_path)
    assert control.returncode == 0 and result.returncode == 0, result.stderr[-3000:]
    lines = wandb_lines(result.stderr)
    assert len(lines) == 1 and "Timed out" in lines[0] and "logging offline" in lines[0], result.stderr[-3000:]
    added = wall - control_wall
    print(f"W&B online with a key and no server added {added:.1f} s (bound {WANDB_INIT_TIMEOUT_S} + {WANDB_START_S} s)")
    assert added < WANDB_INIT_TIMEOUT_S + WANDB_START_S
