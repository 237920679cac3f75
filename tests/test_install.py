"""`pip install .` installs the layer library `ckconv` alone, importable from any directory."""
from __future__ import annotations

import shutil
import subprocess
import venv

from conftest import ROOT


def test_pip_install_gives_ckconv_anywhere_and_nothing_else(tmp_path):
    # A copy of what the package is built from: setuptools builds in the source tree, which must stay clean.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "ckconv", source / "ckconv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs", source / "docs")
    # A fresh environment that reuses the installed torch (no download) and this interpreter's pip.
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", str(source)],
                   check=True, capture_output=True, text=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import ckconv, torch; from ckconv import FlexConv, CKConv, SeparableFlexConv, SRFConv; "
            "y = FlexConv(3, 4, data_dim=2, horizon=9)(torch.randn(1, 3, 8, 8)); "
            "print(ckconv.__file__, ckconv.__version__, tuple(y.shape))")
    out = subprocess.run([python, "-c", code], cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    path, version, shape = out.split(" ", 2)
    assert path.startswith(str(env_dir)) and "site-packages" in path
    assert version == __import__("ckconv").__version__ and shape.strip() == "(1, 4, 8, 8)"
    for framework_package in ("models", "datasets", "engine", "config"):
        missing = subprocess.run([python, "-c", f"import {framework_package}"], cwd=elsewhere, capture_output=True)
        assert missing.returncode != 0, f"{framework_package} was installed too"
    installed = next((env_dir / "lib").glob("python*/site-packages/ckconv"))
    assert (installed / "py.typed").is_file() and (installed / "nn" / "fft_crossover.json").is_file()
