"""``pretrained_wandb=True``: a W&B run's file is downloaded into the run directory and loaded like a local one
(this project's checkpoints or the original code's); without network or credentials one message says what failed
and how to get the file by hand, the run exits non-zero and writes nothing.

The W&B download itself (``engine.checkpoint.download_wandb_file``) is the only thing replaced: by a copy of a local
file, or by the errors W&B raises.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import engine.checkpoint as checkpoint_module
from config import ConfigError, read_command
from config.schema import schema_keys
from engine.errors import report_errors
from original_reference import LAYOUTS, original_state

RUN = "my-team/ckconv_vision/1a2b3c4d"
QUICK = ["dataset_params.synthetic=true", "dataset_params.num_workers=0", "train.limit_eval_batches=1",
         "train.batch_size=4", "wandb.mode=disabled", "train.plot_every=-1", "device=cpu"]


def wandb_file(filename: str) -> list[str]:
    return ["pretrained_wandb=True", f"pretrained_wandb_params.run_path={RUN}",
            f"pretrained_wandb_params.filename={filename}"]


@pytest.fixture
def downloads(monkeypatch):
    """W&B's download replaced by a copy from a local "server" folder; records each call."""
    server: dict[str, Path] = {}
    calls = []

    def download(run_path, filename, root):
        calls.append((run_path, filename))
        if filename not in server:
            raise ValueError(f"no file {filename} in run {run_path}")  # as wandb's CommError would say
        target = Path(root) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(server[filename], target)
        return target

    monkeypatch.setattr(checkpoint_module, "download_wandb_file", download)
    return server, calls


def test_pretrained_wandb_keys_are_used_and_checked():
    status = {info.path: info.status for info in schema_keys()}
    assert {status["pretrained_wandb"], status["pretrained_wandb_params.run_path"],
            status["pretrained_wandb_params.filename"]} == {"used"}
    spec = read_command([*wandb_file("final_model.pt"), "train.do=False"]).spec
    assert spec.runtime.pretrained_wandb.run_path == RUN and spec.runtime.loads_pretrained
    with pytest.raises(ConfigError, match="entity/project/run_id"):
        read_command(["pretrained_wandb=True", "pretrained_wandb_params.run_path=1a2b3c4d",
                      "pretrained_wandb_params.filename=x.pt"])
    with pytest.raises(ConfigError, match="not both"):
        read_command([*wandb_file("x.pt"), "pretrained=True", "pretrained_params.filepath=y.pt"])


def test_an_original_checkpoint_of_a_wandb_run_is_downloaded_into_the_run_and_evaluated(tmp_path, downloads):
    from engine.experiment import run

    server, calls = downloads
    layout = LAYOUTS["flextcn2_smnist"]
    server["final_model.pt"] = tmp_path / "server.pt"
    torch.save({"model": original_state(layout), "optimizer": {}, "lr_scheduler": {}, "epoch": None},
               server["final_model.pt"])
    run_dir = tmp_path / "run"
    summary = run(read_command([*layout["flags"], "train.do=False", *wandb_file("final_model.pt"), *QUICK]), run_dir)
    assert summary["status"] == "evaluated" and calls == [(RUN, "final_model.pt")]
    assert (run_dir / "pretrained_wandb" / "final_model.pt").is_file()
    assert summary["checkpoint"] == str(run_dir / "pretrained_wandb" / "final_model.pt")


def test_one_of_our_checkpoints_from_wandb_starts_a_training_run(tmp_path, downloads, tiny_run):
    from engine.experiment import run

    server, _ = downloads
    first = run(read_command([*tiny_run, "train.epochs=1", "train.limit_train_batches=1"]), tmp_path / "first")
    server["checkpoints/best.pt"] = tmp_path / "first" / "checkpoints" / "best.pt"
    run_dir = tmp_path / "second"
    second = run(read_command([*tiny_run, "train.epochs=1", "train.limit_train_batches=1",
                               *wandb_file("checkpoints/best.pt")]), run_dir)
    assert first["status"] == second["status"] == "completed"
    assert (run_dir / "pretrained_wandb" / "checkpoints" / "best.pt").is_file()


@pytest.mark.parametrize("failure", ["network", "credentials", "no such file", "empty"])
def test_a_failed_download_is_one_message_a_non_zero_exit_and_nothing_written(failure, tmp_path, monkeypatch, capsys):
    from engine.experiment import run

    def download(run_path, filename, root):
        if failure == "network":
            raise ConnectionError("Max retries exceeded with url: /graphql (Failed to establish a new connection)")
        if failure == "credentials":
            import wandb

            raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")
        if failure == "no such file":
            raise ValueError(f"Could not find file {filename} in run {run_path}")
        target = Path(root) / filename
        target.touch()  # W&B answered with an empty file
        return target

    monkeypatch.setattr(checkpoint_module, "download_wandb_file", download)
    layout = LAYOUTS["flextcn2_smnist"]
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info, report_errors():
        run(read_command([*layout["flags"], "train.do=False", *wandb_file("final_model.pt"), *QUICK]), run_dir)
    assert exit_info.value.code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: pretrained_wandb=True could not download 'final_model.pt' from the W&B run")
    assert "\n" not in message
    assert "by hand" in message and f"https://wandb.ai/{RUN}/files" in message
    assert "pretrained=True pretrained_params.filepath=<the file>" in message
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_crossres_downloads_before_writing_anything(tmp_path, monkeypatch, capsys):
    from engine.crossres import run

    def offline(run_path, filename, root):
        raise ConnectionError("offline")

    monkeypatch.setattr(checkpoint_module, "download_wandb_file", offline)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit), report_errors():
        run(read_command(["experiment=dev/crossres_cifar10_tiny", *wandb_file("final_model.pt"), *QUICK],
                         entry="run_crossres"), run_dir)
    assert "could not download" in capsys.readouterr().err
    assert not run_dir.exists() or not any(run_dir.iterdir())
