"""The README against the code, so that it cannot drift: every command of its ```bash blocks (and every
inline `python run_*.py ...` command) names a script that exists and composes and validates; the quick ones
run for real, shrunk by a few appended overrides; its Python example runs and its comments' claims hold;
every key, preset, path and link it names exists; its Layout section explains every top-level entry.

Commands of paper presets only compose here (a full run takes hours); ``pytest -m slow`` runs each for one
tiny step.
"""
from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

from config import ConfigError, check_overrides, group_options, read_command  # noqa: E402
from config.schema import OVERWRITTEN, REJECTED, UNUSED, schema_keys  # noqa: E402

ENTRIES = {"run_experiment.py": "run_experiment", "run_crossres.py": "run_crossres", "run_profiler.py": "run_profiler"}
# Placeholders of the README and what the tests put in their place ({run}: a run directory made by the test).
PLACEHOLDERS = {"outputs/<date>/<time>": "{run}", "<run>": "{run}", "experiment=...": "experiment=dev/mnist1d_quick",
                "<any overrides>": ""}
# Appended to a command that runs here (unless it sets the key itself): a few steps, no files, no network.
QUICK = {"train.epochs": "1", "train.limit_train_batches": "2", "train.limit_eval_batches": "2",
         "dataset_params.synthetic": "true", "dataset_params.num_workers": "0", "device": "cpu",
         "wandb.mode": "disabled", "train.plot_every": "-1"}
TINY_STEP = {**QUICK, "train.limit_train_batches": "1", "train.limit_eval_batches": "1", "train.batch_size": "4",
             "cross_res.finetune_epochs": "1"}
SECTIONS = {info.path for info in schema_keys() if info.kind == "section" and "." not in info.path}
STATUS = {info.path: info.status for info in schema_keys()}
NO_EFFECT = (UNUSED, OVERWRITTEN, REJECTED)  # accepted but unused, set by the run itself, or rejected


# --- reading the README ----------------------------------------------------------------------------------------------
def fenced_blocks(language: str) -> list[str]:
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```[ \t]*$", README, re.M | re.S) if lang == language]


def prose() -> str:
    """The README without its fenced blocks."""
    return re.sub(r"^```.*?^```[ \t]*$", "", README, flags=re.M | re.S)


def inline_spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose())


def bash_lines() -> list[tuple[str, str]]:
    """(command, comment) of every line of the ```bash blocks."""
    lines = []
    for block in fenced_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition(" #")
            if command.strip() and not command.lstrip().startswith("#"):
                lines.append((command.strip(), comment.strip()))
    return lines


def inline_commands() -> list[str]:
    return [span for span in inline_spans() if re.match(r"(python |torchrun )\S*run_\w+\.py", span)]


def substitute(command: str, run: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value.format(run=run))
    assert "<" not in command and "..." not in command, f"a README placeholder this test does not know: {command}"
    return command


def parse(command: str) -> tuple[list[str], str, list[str]]:
    """(launcher, script, arguments): ``python s.py a b`` or ``torchrun --flags s.py a b``."""
    tokens = shlex.split(command)
    if tokens[0] == "python" and tokens[1].endswith(".py"):
        return [], tokens[1], tokens[2:]
    if tokens[0] == "torchrun":
        at = next(i for i, token in enumerate(tokens) if token.endswith(".py"))
        return ["-m", "torch.distributed.run", *tokens[1:at]], tokens[at], tokens[at + 1:]
    raise AssertionError(f"README command of a kind this test does not know: {command}")


def is_quick(script: str, args: list[str], launcher: list[str]) -> bool:
    """Runs here: the default experiment, dev presets, and the helper scripts (plots of a run)."""
    if launcher or script.startswith("benchmarks/"):  # benchmarks take minutes: see test_benchmark_command_...
        return False
    if script not in ENTRIES:
        return True
    preset = next((a.split("=", 1)[1] for a in args if a.startswith("experiment=")), None)
    return (preset is None or preset.startswith("dev/")) and not any(a.startswith(("model=", "optim=")) for a in args)


def with_defaults(args: list[str], extra: dict) -> list[str]:
    """``args`` plus the ``extra`` keys they do not set themselves (Hydra rejects a key given twice)."""
    keys = {a.split("=", 1)[0] for a in args if "=" in a}
    return [*args, *(f"{key}={value}" for key, value in extra.items() if key not in keys)]


BASH = [command for command, _ in bash_lines()]
PYTHON_COMMANDS = [c for c in BASH if c.startswith(("python ", "torchrun ")) and not c.startswith("python -m pytest")]
ENTRY_COMMANDS = [c for c in PYTHON_COMMANDS + inline_commands() if parse(substitute(c, "R"))[1] in ENTRIES]


def _quick(command: str) -> bool:
    launcher, script, args = parse(substitute(command, "R"))
    return is_quick(script, args, launcher)


QUICK_COMMANDS = [(c, note) for c, note in bash_lines() if c in PYTHON_COMMANDS and _quick(c)]
BENCHMARK_COMMANDS = [c for c in PYTHON_COMMANDS if c.startswith("python benchmarks/")]
SLOW_COMMANDS = [c for c in PYTHON_COMMANDS if not _quick(c) and not c.startswith("torchrun")
                 and c not in BENCHMARK_COMMANDS]


# --- the commands ----------------------------------------------------------------------------------------------------
def test_the_readme_has_the_commands_this_module_checks():
    assert len(BASH) >= 10 and len(QUICK_COMMANDS) >= 4 and len(SLOW_COMMANDS) >= 3, BASH
    assert "python run_experiment.py" in BASH  # the default experiment, the first thing a user runs


def test_every_command_is_of_a_known_kind_and_names_an_existing_file():
    for command in BASH + inline_commands():
        if command.startswith("pip install"):
            for requirement in re.findall(r"-r (\S+)", command):
                assert (ROOT / requirement).is_file(), command
            continue
        if command.startswith("python -m pytest"):
            assert (ROOT / "pytest.ini").is_file() and (ROOT / "tests").is_dir()
            continue
        _, script, _ = parse(substitute(command, "R"))
        assert (ROOT / script).is_file(), f"{command}: no {script}"


def test_cpu_wheel_command_installs_the_pinned_versions():
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M))
    cpu = [c for c in BASH if "download.pytorch.org/whl/cpu" in c]
    assert len(cpu) == 1, BASH
    assert dict(re.findall(r"\b(torch|torchvision)==(\S+)", cpu[0])) == pins, (cpu[0], pins)
    assert cpu[0].endswith("--index-url https://download.pytorch.org/whl/cpu")
    assert BASH[BASH.index(cpu[0]) + 1] == "pip install -r requirements.txt"  # then the rest, keeping the CPU wheel


@pytest.mark.parametrize("command", ENTRY_COMMANDS)
def test_entry_point_command_composes_and_validates(command):
    """What Hydra would compose for the command, and the entry point's value checks (a renamed preset, key or
    group option fails here)."""
    _, script, args = parse(substitute(command, "outputs/readme-run"))
    check_overrides(args)
    read_command(args, entry=ENTRIES[script])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch run of the default experiment (its checkpoints stand in for <run>)."""
    from engine.experiment import run

    overrides = with_defaults([], QUICK)
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    summary = run(read_command(overrides), run_dir)
    assert summary["status"] == "completed"
    return run_dir


# The commands that draw figures take ~10 s more each (matplotlib); tests/test_figures.py covers the drawing.
@pytest.mark.parametrize("command,note", [
    pytest.param(c, note, id=c, marks=[pytest.mark.slow] if "figures" in note else []) for c, note in QUICK_COMMANDS])
def test_quick_command_runs(command, note, finished_run, tmp_path):
    run = tmp_path / "given"
    shutil.copytree(finished_run, run)  # each command gets its own copy (a resume writes into it)
    launcher, script, args = parse(substitute(command, str(run)))
    out = tmp_path / "out"
    if script in ENTRIES:
        extra = dict(QUICK)
        if "figures" in note:
            extra.pop("train.plot_every")  # the command is there to draw figures
        args = with_defaults(args, {**extra, "hydra.run.dir": str(out)})
    done = subprocess.run([sys.executable, *launcher, script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    if script in ENTRIES:
        last = done.stdout.strip().splitlines()[-1]
        assert re.match(r"summary: status=(completed|evaluated) ", last), done.stdout[-2000:]
    if "figures" in note:  # "writes <run dir>/figures/", "the same figures from any run directory"
        drawn = out if script in ENTRIES else run
        assert list((drawn / "figures").glob("*.png")), sorted(p.name for p in drawn.rglob("*"))


@pytest.mark.parametrize("command", BENCHMARK_COMMANDS)
def test_benchmark_command_uses_options_the_script_has(command):
    """A benchmark runs for minutes, so its README command is not run; every option it passes must be one the
    script's --help lists."""
    _, script, args = parse(command)
    usage = script_help(script)
    for option in (a for a in args if a.startswith("--")):
        assert re.search(rf"{re.escape(option)}\b", usage), f"{command}: {script} has no {option}"


@functools.lru_cache(maxsize=None)
def script_help(script: str) -> str:
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("command", SLOW_COMMANDS)
def test_paper_command_runs_one_tiny_step(command, tmp_path):
    _, script, args = parse(substitute(command, str(tmp_path)))
    args = with_defaults(args, {**TINY_STEP, "hydra.run.dir": str(tmp_path / "out")})
    done = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


# --- the Python example ---------------------------------------------------------------------------------------------
def test_python_example_runs_and_its_comments_hold():
    """Every ```python block runs; a comment ``# [8, 16, 32, 32]`` on ``y = ...`` is y's shape and a comment
    ``a.b == (5, 5)`` is checked as written."""
    import torch

    blocks = fenced_blocks("python")
    assert blocks
    for block in blocks:
        namespace: dict = {}
        chunk: list[str] = []
        checked = 0
        for line in block.splitlines():
            chunk.append(line)
            code, _, comment = line.partition("#")
            if not comment:
                continue
            exec(compile("\n".join(chunk), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
            chunk = []
            target = re.match(r"\s*(\w+)\s*=", code)
            shape = re.search(r"\[([\d,\s]+)\]", comment)
            if target and shape:
                expected = [int(n) for n in shape.group(1).split(",")]
                assert list(namespace[target.group(1)].shape) == expected, line
                checked += 1
            for left, right in re.findall(r"([\w.]+) == (\([^)]*\)|[\w.]+)", comment):
                assert eval(left, namespace) == eval(right, namespace), line  # noqa: S307
                checked += 1
        exec(compile("\n".join(chunk), "README.md", "exec"), namespace)  # noqa: S102
        assert isinstance(namespace.get("torch"), type(torch)) and checked >= 2, block


# --- keys, presets, paths and links ------------------------------------------------------------------------------------
def mentioned_keys(text: str) -> list[tuple[str, str]]:
    """(key, token) of ``key=value`` tokens and of backticked config keys (``train.epochs``) in ``text``."""
    found = []
    spans = re.findall(r"`([^`\n]+)`", text)
    for token in (t for span in spans for t in span.split()):
        if "=" in token and re.match(r"[a-z_][\w./]*=(?!=)", token):
            found.append((token.split("=", 1)[0], token))
        elif re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", token) and token.split(".")[0] in SECTIONS \
                and not re.search(r"\.(json|jsonl|py|md|ya?ml|pt|txt|csv|png)$", token):
            found.append((token, token))
    return found


def test_keys_and_group_options_named_in_the_readme_exist():
    commands = "\n".join(f"`{c}`" for c in PYTHON_COMMANDS)
    for key, token in mentioned_keys(prose()) + mentioned_keys(commands):
        if key.startswith("hydra/"):  # hydra/launcher=slurm
            option = token.split("=", 1)[1]
            assert (ROOT / "cfg" / key / f"{option}.yaml").is_file(), token
            continue
        value = token.split("=", 1)[1] if "=" in token else "0"
        if key in ("experiment", "model", "optim"):
            assert re.search(r"<|\.\.\.", value) or value in group_options(key), token  # experiment=<name>: any
            continue
        try:
            check_overrides([f"{key}=0"])
        except ConfigError as error:
            raise AssertionError(f"the README names {token!r}: {error}") from None


def test_keys_without_effect_are_never_recommended():
    """A key that is accepted but unused, or rejected, appears only where the README says so, and the README
    sends the reader to the list of all of them in docs/CONFIG.md."""
    for paragraph in re.split(r"\n\s*\n", prose()):
        for key, token in mentioned_keys(paragraph):
            if STATUS.get(key) in NO_EFFECT:
                assert re.search(r"no effect|rejected", paragraph), f"{token} in:\n{paragraph}"
    for command in BASH:
        for key, token in mentioned_keys(f"`{command}`"):
            assert STATUS.get(key) not in NO_EFFECT, f"{command} sets {token}, which has no effect"
    pointer = [p for p in re.split(r"\n\s*\n", prose()) if "no effect" in p and "docs/CONFIG.md" in p]
    assert pointer, "no paragraph of the README points to docs/CONFIG.md for the keys without effect"
    section = re.search(r'"([^"]+)"', pointer[0])
    assert section and f"## {section.group(1)}\n" in (ROOT / "docs" / "CONFIG.md").read_text(), pointer[0]


def test_links_and_paths_in_the_readme_exist():
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", README) if not target.startswith("http")]
    assert {"docs/CONFIG.md", "docs/INTERFACES.md"} <= set(links), links
    top = {p.name for p in ROOT.iterdir()}
    paths = [t for span in inline_spans() for t in span.split() if "/" in t and t.split("/")[0] in top]
    assert len(paths) >= 5, paths
    for target in links + paths:
        if re.search(r"[<{*]|=", target):
            continue
        path, _, name = target.partition(":")  # ckconv/nn/functional.py:prefer_fft
        assert (ROOT / path).exists(), target
        if name:
            assert re.search(rf"^def {name}\b", (ROOT / path).read_text(), re.M), target


def test_layout_section_explains_every_top_level_entry():
    layout = re.search(r"^## Layout\n(.*?)^## ", README, re.M | re.S).group(1)
    block = re.search(r"^```\n(.*?)^```", layout, re.M | re.S).group(1)
    described = {entry.rstrip("/,") for line in block.splitlines() if line[:1].strip()
                 for entry in line.split("  ")[0].split()}
    ignored = {"data", "outputs", "multirun", "wandb", "__pycache__"}
    present = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in ignored}
    present |= {p.name for p in ROOT.glob("run_*.py")} | {".ci/run"}
    assert present <= described, sorted(present - described)
    for entry in described - ignored:
        assert (ROOT / entry).exists(), f"the Layout section names {entry}, which does not exist"
