"""Run logging: always local files in the run directory, W&B when available.

* ``metrics.jsonl``: one JSON object per epoch (appended and flushed, so a killed run keeps its history).
* ``summary.json``: the run's final numbers (rewritten atomically whenever they change).
* W&B: ``wandb.mode`` auto (online with credentials, else offline) | online | offline | disabled;
  ``debug=True`` means offline (original flag). Training never fails because W&B does: any W&B error
  is reported once, as one warning line, and logging continues locally. When online W&B cannot start
  (no API key, no network) the run logs offline instead, for a later ``wandb sync``.

Time W&B can add to a run: at most ``WANDB_INIT_TIMEOUT_S`` (15 s; W&B's own default is 90 s) waiting
for a server that does not answer, plus starting W&B itself (import, offline files, finish: 1-4 s measured
on a busy 2-core CPU). Without an API key online mode fails at once, and offline mode needs no network,
so neither waits (tests/test_faults.py measures all three cases).
"""
from __future__ import annotations

import json
import math
import netrc
import os
import warnings
from pathlib import Path

from datasets.paths import atomic_write

from .specs import WandbSpec

WANDB_MODES = ("auto", "online", "offline", "disabled")  # the allowed values of ``wandb.mode``

# Seconds wandb.init may wait for the W&B server before the run goes on offline (see the module docstring).
WANDB_INIT_TIMEOUT_S = 15


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: Path, data: dict) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str, debug: bool) -> str:
    env = os.environ.get("WANDB_MODE")
    if env in ("disabled", "offline", "online") and mode == "auto":
        return env
    if debug and mode in ("auto", "online"):
        return "offline"
    if mode == "auto":
        return "online" if has_wandb_credentials() else "offline"
    return mode


# The numbers of summary.json that the run's last printed line repeats (those the run has).
SUMMARY_LINE_KEYS = ("status", "epochs_completed", "test_accuracy", "best_val_accuracy", "best_test_accuracy",
                     "test_mse", "best_val_mse", "best_test_mse",  # a regression (the adding problem)
                     "source_accuracy", "ootb_accuracy", "final_accuracy")


def summary_line(summary: dict, path: Path | None = None) -> str:
    """The run's last line: the main numbers of ``summary.json`` as ``key=value`` (the file's key names, so a
    log can be grepped like the file), e.g.
    ``summary: status=completed epochs_completed=40 test_accuracy=0.9012 ... (run/summary.json)``."""
    items = []
    for key in SUMMARY_LINE_KEYS:
        value = summary.get(key)
        if value is not None:
            items.append(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}")
    return "summary: " + " ".join(items) + (f" ({path})" if path is not None else "")


def _start_wandb(mode: str, *, dir: str, **kwargs):
    # Settings(silent=True) does not cover every W&B message (e.g. the login note when an API key is set); the
    # variable does. A user's own WANDB_SILENT=false wins.
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    Path(dir).mkdir(parents=True, exist_ok=True)
    return wandb.init(mode=mode, dir=dir, **kwargs,
                      settings=wandb.Settings(silent=True, init_timeout=WANDB_INIT_TIMEOUT_S))


def _warn(message: str) -> None:
    """A UserWarning printed as one line: W&B's messages span lines, and ``warnings.warn`` would add the
    source line of the call."""
    warnings.warn_explicit(" ".join(message.split()), UserWarning, filename="W&B", lineno=0)


class RunLogger:
    """Writes metrics and the summary locally and to W&B. Only rank 0 creates one with ``enabled=True``."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, wandb: WandbSpec | None = None,
                 config: dict | None = None, resume_id: str | None = None, name: str | None = None):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.summary: dict = {}
        self.wandb_run = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.summary_path = self.run_dir / "summary.json"
        if self.summary_path.exists():
            try:
                self.summary = json.loads(self.summary_path.read_text())
            except json.JSONDecodeError:
                self.summary = {}
        if wandb is not None:
            self._init_wandb(wandb, config, resume_id, name)

    def _init_wandb(self, spec: WandbSpec, config, resume_id, name) -> None:
        mode = resolve_wandb_mode(spec.mode, spec.debug)
        if mode == "disabled":
            return
        wandb_dir = Path(spec.dir) if spec.dir else self.run_dir
        if not wandb_dir.is_absolute():
            wandb_dir = self.run_dir / wandb_dir
        start = dict(project=spec.project, entity=spec.entity or None, dir=str(wandb_dir), config=config,
                     id=resume_id, resume="allow" if resume_id else None, name=name)
        try:
            self.wandb_run = _start_wandb(mode, **start)
            return
        except Exception as error:  # W&B must never stop training
            failure = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"  # not W&B's advice lines
        if mode == "online":  # no key, no network: keep the run for a later `wandb sync`
            try:
                self.wandb_run = _start_wandb("offline", **start)
                _warn(f"W&B could not start online ({failure}); logging offline to {wandb_dir} instead "
                      f"(upload later with `wandb sync`)")
                return
            except Exception:
                pass
        _warn(f"W&B logging is off for this run ({failure}); metrics are still written to {self.run_dir}")
        self.wandb_run = None

    @property
    def wandb_id(self) -> str | None:
        return self.wandb_run.id if self.wandb_run is not None else None

    def truncate_metrics(self, epochs_completed: int, phase: str | None = None) -> None:
        """Drop metric lines of epochs after ``epochs_completed`` (a resumed run redoes them); with ``phase``,
        only that phase's lines (a cross-resolution run's other phase keeps its own)."""
        if not self.enabled or not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            record = json.loads(line) if line.strip() else None
            if record is not None and (record.get("phase") != phase or record.get("epoch", 0) <= epochs_completed):
                kept.append(line)
        with atomic_write(self.metrics_path, "w") as handle:
            handle.write("".join(line + "\n" for line in kept))

    def log_epoch(self, metrics: dict, step: int) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(_jsonable(metrics), sort_keys=True) + "\n")
        self._wandb_call("log", {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, step=step)

    def log_step(self, values: dict, step: int) -> None:
        """Step-wise W&B values outside the epoch lines (metrics.jsonl stays one line per epoch)."""
        self._wandb_call("log", values, step=step)

    def log_images(self, images: dict[str, Path], step: int | None = None) -> None:
        """Log PNG files to W&B as ``wandb.Image`` under the given keys (e.g. ``figures/kernels``).

        Does nothing when W&B is off. Missing files are skipped (a figure that could not be drawn);
        a W&B error is reported once and turns W&B off, as for every other W&B call.
        """
        if self.wandb_run is None:
            return
        try:
            import wandb

            payload = {key: wandb.Image(str(path)) for key, path in images.items() if Path(path).is_file()}
        except Exception as error:
            self._warn_once(error)
            return
        if payload:
            self._wandb_call("log", payload, step=step)

    def update_summary(self, **values) -> None:
        if not self.enabled:
            return
        self.summary.update(_jsonable(values))
        write_json(self.summary_path, self.summary)
        if self.wandb_run is not None:
            try:
                self.wandb_run.summary.update(self.summary)
            except Exception as error:
                self._warn_once(error)

    def _wandb_call(self, method: str, *args, **kwargs) -> None:
        if self.wandb_run is None:
            return
        try:
            getattr(self.wandb_run, method)(*args, **kwargs)
        except Exception as error:
            self._warn_once(error)

    def _warn_once(self, error: Exception) -> None:
        _warn(f"W&B call failed ({type(error).__name__}: {error}); continuing with local logs only")
        self.wandb_run = None

    def finish(self) -> None:
        if self.wandb_run is not None:
            try:
                self.wandb_run.finish()
            except Exception:
                pass
            self.wandb_run = None


class PhaseLogger:
    """A run's :class:`RunLogger` as seen by one phase of a cross-resolution run: metric lines get ``phase`` and
    the global W&B step, summary keys get the phase as prefix (``source_best_val_accuracy``, ...)."""

    def __init__(self, base: RunLogger, phase: str):
        self.base, self.phase = base, phase

    @property
    def wandb_id(self):
        return self.base.wandb_id

    def log_epoch(self, metrics: dict, step: int) -> None:
        self.base.log_epoch({"phase": self.phase, "step": step, **metrics}, step=step)

    def log_images(self, images: dict[str, Path], step: int | None = None) -> None:
        self.base.log_images(images, step=step)

    def update_summary(self, **values) -> None:
        self.base.update_summary(**{f"{self.phase}_{key}": value for key, value in values.items()})

    def truncate_metrics(self, epochs_completed: int) -> None:
        """Drop this phase's lines after ``epochs_completed`` (they are redone); other phases' lines stay."""
        self.base.truncate_metrics(epochs_completed, phase=self.phase)
