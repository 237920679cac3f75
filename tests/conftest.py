"""Shared test setup: the project root on sys.path, W&B off by default, a fresh run directory, and the overrides
of a tiny run.

``TINY_RUN`` (also the ``tiny_run`` fixture) is a FlexTCN of width 8 with one block on synthetic MNIST-1D
(64 training samples, batch 16: 4 steps per epoch), on the CPU with W&B off: every test that trains a run adds
its own epochs, limits and options to it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project runs from its root (datasets/models are not installed)


TINY_RUN = ("experiment=dev/mnist1d_quick", "dataset_params.synthetic=true", "dataset_params.num_workers=0",
            "net.no_hidden=8", "net.no_blocks=1", "kernel.no_hidden=8", "train.batch_size=16", "wandb.mode=disabled",
            "device=cpu")


@pytest.fixture
def tiny_run() -> list[str]:
    """The overrides of a tiny run (``TINY_RUN``), as a fresh list to extend."""
    return list(TINY_RUN)


@pytest.fixture(autouse=True)
def _wandb_off(monkeypatch):
    # No test talks to W&B unless it sets wandb.mode itself (and then only offline); a developer's
    # WANDB_MODE=online or API key must not leak into test runs.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Every torchvision download fails as it does offline: tests never touch the network."""
    import urllib.error

    import torchvision

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline (test) for {url}")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A not-yet-existing run directory (the engine creates it, as Hydra's output dir would be)."""
    return tmp_path / "run"
