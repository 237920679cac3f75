"""The shape of the code that users and the other packages rely on: which package may import which, that the
layer library and the models load without Hydra, and that one run reads and validates its config once."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_RUN

import config.read
from config import ConfigError, read_command
from engine import experiment

PACKAGES = ("ckconv", "models", "datasets", "engine", "config")
# What each package may import of the others (the direction of the layers).
ALLOWED = {"ckconv": set(), "models": {"ckconv"}, "datasets": set(), "engine": {"ckconv", "models", "datasets"},
           "config": {"ckconv", "models", "datasets", "engine"}}


def imported_packages(package: str) -> dict[str, set[str]]:
    """{other package: files of ``package`` importing it}, from every import statement, including those inside
    functions (a lazy import is an edge of the graph too)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_packages_import_each_other_only_downwards_so_there_is_no_cycle():
    graph = {package: imported_packages(package) for package in PACKAGES}
    for package, imports in graph.items():
        extra = {other: sorted(files) for other, files in imports.items() if other not in ALLOWED[package]}
        assert not extra, f"{package} imports {extra}"
    # ALLOWED itself is acyclic: a topological order exists.
    order, remaining = [], dict(ALLOWED)
    while remaining:
        ready = [p for p, deps in remaining.items() if deps <= set(order)]
        assert ready, f"cycle among {sorted(remaining)}"
        order += ready
        for p in ready:
            del remaining[p]


def test_layers_models_datasets_and_engine_load_without_hydra_or_omegaconf():
    code = ("import sys, ckconv, models, datasets, engine.experiment, engine.crossres, engine.profiler; "
            "print(sorted(m for m in ('hydra', 'omegaconf', 'config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_below_the_entry_points_only_config_reads_a_dictconfig():
    readers = [str(path.relative_to(ROOT)) for package in ("ckconv", "models", "datasets", "engine", "experiments")
               for path in sorted((ROOT / package).rglob("*.py")) if "omegaconf" in path.read_text().lower()]
    assert readers == []


def test_a_model_is_built_from_its_spec_without_the_run_config():
    from models import ModelSpec, NetSpec, build_model, count_parameters

    spec = read_command(["experiment=t3_cifar10_flexnet7"]).spec.model
    rebuilt = ModelSpec.from_dict(spec.to_dict())
    assert rebuilt == spec
    assert count_parameters(build_model(rebuilt, 2, 3, 10)) == 671_650  # FlexNet-7, Table 3
    with pytest.raises(ValueError, match="net.no_hiden"):
        ModelSpec.from_dict({"net": {"no_hiden": 4}})
    assert build_model(ModelSpec(net=NetSpec(no_hidden=8, no_blocks=1)), 1, 1, 10)(
        __import__("torch").zeros(2, 1, 40)).shape == (2, 10)


@pytest.fixture
def count_validations(monkeypatch):
    calls = []
    real = config.read.validate_config

    def counting(cfg, **kwargs):
        calls.append(kwargs.get("entry"))
        return real(cfg, **kwargs)

    monkeypatch.setattr(config.read, "validate_config", counting)
    return calls


def test_one_run_validates_its_config_once(count_validations, tmp_path):
    overrides = [*TINY_RUN, "train.epochs=1", "train.limit_train_batches=1", "train.limit_eval_batches=1",
                 "train.plot_every=-1"]
    summary = experiment.run(read_command(overrides), tmp_path / "run")
    assert summary["status"] == "completed"
    assert count_validations == ["run_experiment"]
    # Resuming reads the command, then the checkpoint's config under it: each once.
    count_validations.clear()
    experiment.run(read_command([*overrides, "train.epochs=2", "train.resume=true"]), tmp_path / "run")
    assert count_validations == ["run_experiment", "run_experiment"]


def test_a_bad_value_is_reported_when_the_config_is_read_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.optimizer='adam' is invalid: .*Adam, AdamW, SGD, RMSprop"):
        read_command([*TINY_RUN, "train.optimizer=adam"])


def test_the_spec_parses_every_spelling_once():
    spec = read_command(["train.scheduler=''", "kernel.bias_init=None", "train.resume=true", "conv.horizon='33'",
                         "train.augment=none", "train.compile=true"]).spec
    assert spec.optim.scheduler == "none"
    assert spec.model.kernel.bias_init is None
    assert spec.runtime.resume is True
    assert spec.model.conv.horizon == 33
    assert spec.data.augment == "None"
    assert spec.runtime.compile == "inductor"
    assert spec.config["train"]["scheduler"] == ""  # the record keeps what was written
