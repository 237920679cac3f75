"""Shared test setup: the project root on sys.path, W&B off by default, a fresh run directory."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project runs from its root (datasets/models are not installed)


@pytest.fixture(autouse=True)
def _wandb_off(monkeypatch):
    # No test talks to W&B unless it sets wandb.mode itself (and then only offline); a developer's
    # WANDB_MODE=online or API key must not leak into test runs.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A not-yet-existing run directory (the engine creates it, as Hydra's output dir would be)."""
    return tmp_path / "run"
