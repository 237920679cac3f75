"""Cross-resolution runs of ``run_crossres.py``: train at ``cross_res.source_res``, test out of
the box at ``cross_res.target_res``, fine-tune there for ``cross_res.finetune_epochs``.

Phases (one run directory; each training phase keeps its own checkpoints)::

    <run>/source/checkpoints/{last,best}.pt      training at the source resolution (the engine's Trainer)
    <run>/source/checkpoints/source_model.pt     the source phase is done: its best-validation weights
    <run>/finetune/checkpoints/{last,best}.pt    fine-tuning at the target resolution
    <run>/metrics.jsonl, summary.json            both phases (metric lines carry ``phase``)

* source: the images are resized to ``source_res``; CKConv/FlexConv nets get ``conv.horizon =
  source_res + 1``; the anti-aliasing penalty uses ``source_res + 1 + res_offset`` taps.
* ootb: the SAME trained model is moved to the target resolution with the layers' public methods
  (:func:`move_to_resolution`: ``CKConv.set_horizon(target_res + 1, rescale=True)`` resamples every
  kernel on the finer grid over the same [-1, 1] extent and multiplies it by ``(source/target)^2``, the
  original's ``kernel.sampling_rate_norm``; ``SRFConv.set_scale_sigma`` scales N-Jet sigmas by
  ``target/source``) and tested at the target resolution -> ``ootb_accuracy``.
* finetune: a fresh optimiser and schedule (warm-up again, as the original) for ``finetune_epochs`` at the
  target resolution, penalty at ``target_res + 1`` taps.

Which source weights go into the target phase: the BEST-VALIDATION checkpoint of the source phase. The
original used the weights it reloaded after training, which were selected on the test set; under
``protocol=paper`` (validation = test set) ours are the same weights, under ``protocol=clean`` they are
selected without looking at the test set.

Reported numbers (``summary.json`` and the W&B summary): ``source_accuracy`` (test accuracy of those
source weights), ``ootb_accuracy``, ``ootb_difference = ootb - source``, ``final_accuracy`` (test accuracy
at the best-validation fine-tuning epoch; the original reported the best test accuracy during fine-tuning,
which is ``final_best_test_accuracy`` here and equals ``final_accuracy`` under ``protocol=paper``; under
``protocol=clean`` the test set is not evaluated every epoch and it is None) and ``no_params``.

W&B steps: source epochs are steps ``1..E_s``; ``source_accuracy`` / ``ootb_accuracy`` are logged at step
``E_s``; fine-tuning epochs continue at ``E_s + 1 .. E_s + E_f`` (the original restarted them at
``finetune_epochs + 1``, which only lined up when both phases had the same length).

Resume (``train.resume=true`` with the same ``hydra.run.dir``, or ``train.resume=<run dir or one of its
checkpoints>``) continues in the phase where the run stopped: inside the source phase from its
``last.pt``; after it (``source_model.pt`` exists) without retraining it; inside fine-tuning from
``finetune/checkpoints/last.pt`` (the OOTB result is stored in that checkpoint and not recomputed).

``cross_res.eval_resolutions=[16,24,32] pretrained=True pretrained_params.filepath=PATH`` instead
evaluates one trained checkpoint at each resolution (:func:`evaluate_at_resolutions`).
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ckconv import CKConv, SRFConv
from config import ConfigError, config_warnings, validate_config
from config.choices import CK_NET_TYPES, CONTINUOUS_CONV_TYPES, parse_resize, parse_resume
from datasets import dataset_meta, get_dataset_spec, list_datasets
from models import count_parameters

from .build import (build_data_from_cfg, build_model_from_cfg, build_trainer, config_from_checkpoint, describe_model,
                    input_meta, load_weights)
from .checkpoint import CheckpointError, CrossResState, load_checkpoint, save_checkpoint
from .experiment import close_run, finish_training, finished_summary, stop_after_signal
from .logger import RunLogger
from .preemption import StopRequest, stop_on_signals
from .runtime import Dist, broadcast_from_main, draw_seed, init_distributed, resolve_device, seed_everything
from .trainer import NonFiniteLossError, Trainer, evaluate, layer_statistics

PHASES = ("source", "finetune")
SOURCE_MODEL = "source_model.pt"  # written when the source phase is finished (the original's final_source_res_model.pt)


# --- resolutions -----------------------------------------------------------------------------------------
def native_resolution(cfg) -> int:
    """Image side of ``cfg.dataset`` as stored; ConfigError for datasets that cannot be resized."""
    spec = get_dataset_spec(cfg.dataset)
    if not spec.supports_resolution:
        allowed = [name for name in list_datasets() if get_dataset_spec(name).supports_resolution]
        raise ConfigError(f"dataset={cfg.dataset!r} is invalid for run_crossres.py: cross-resolution needs a 2D image "
                          f"dataset that can be resized; allowed: {', '.join(allowed)}")
    return dataset_meta(cfg.dataset).length


def resize_value(resolution: int, native: int) -> str:
    """``cross_res.resize`` for a resolution: "" at the native size (no resize), else "r,r"."""
    return "" if int(resolution) == int(native) else f"{int(resolution)},{int(resolution)}"


def with_resolution(cfg: DictConfig, resolution: int, native: int) -> DictConfig:
    """A copy of ``cfg`` whose data is resized to ``resolution`` (build_data_from_cfg reads cross_res.resize)."""
    cfg = copy.deepcopy(cfg)
    OmegaConf.update(cfg, "cross_res.resize", resize_value(resolution, native), merge=False)
    return cfg


def uses_kernel_grid(cfg) -> bool:
    """Nets whose kernels live on a ``conv.horizon`` grid (CKConv / FlexConv layers)."""
    return cfg.net.type in CK_NET_TYPES and cfg.conv.type in CONTINUOUS_CONV_TYPES


def phase_config(base: DictConfig, phase: str) -> DictConfig:
    """The config of one phase: data resolution, horizon, regulariser resolution, epochs, kernel scales.

    It is stored in that phase's checkpoints, so ``run_experiment.py train.do=False`` evaluates one of them
    at the right resolution without further overrides.
    """
    cfg = copy.deepcopy(base)
    cross = base.cross_res
    source, target = int(cross.source_res), int(cross.target_res)
    resolution = source if phase == "source" else target
    native = native_resolution(base)
    OmegaConf.update(cfg, "cross_res.resize", resize_value(resolution, native), merge=False)
    if cfg.conv.type != "Conv":  # as the original: Conv keeps its kernel size, every other type follows the grid
        OmegaConf.update(cfg, "conv.horizon", resolution + 1, merge=False)
    if cfg.kernel.regularize:
        offset = int(cfg.kernel.regularize_params.res_offset) if phase == "source" else 0
        OmegaConf.update(cfg, "kernel.regularize_params.res", resolution + 1 + offset, merge=False)
    if phase == "finetune":
        OmegaConf.update(cfg, "train.epochs", int(cross.finetune_epochs), merge=False)
        # What move_to_resolution does to the layers, written down so the config describes the model.
        norm = float(base.kernel.sampling_rate_norm) * (source / target) ** 2
        OmegaConf.update(cfg, "kernel.sampling_rate_norm", norm, merge=False)
        scale = float(base.kernel.srf.scale) or 1.0
        OmegaConf.update(cfg, "kernel.srf.scale", scale * target / source, merge=False)
    return cfg


def rescaled_grid(grid_size: int, from_res: int, to_res: int) -> int:
    """Taps per dimension covering the same extent at ``to_res``: ``(n - 1)`` scales with the resolution.

    The result is odd (2D "same" convolutions need odd kernels), rounded to the nearest odd size when the
    ratio gives none exactly; e.g. 17 taps at 16 -> 33 taps at 32, 33 taps at 32 -> 25 taps at 24.
    """
    half = (grid_size - 1) * to_res / from_res / 2
    return max(3, 2 * int(round(half)) + 1)


def move_to_resolution(model: torch.nn.Module, from_res: int, to_res: int) -> dict:
    """Move a trained model from inputs of ``from_res`` to ``to_res`` pixels, over the same physical extent.

    CKConv/FlexConv: ``set_horizon(rescaled grid, rescale=True)`` (kernel resampled on the new grid, kernel
    multiplied by the sampling-rate ratio); SRF: sigma scaled by ``to_res / from_res``. Discrete convs are
    left as they are (the original's Conv baselines). Returns ``{layer name: new grid}`` of moved CK layers.
    """
    grids = {}
    for name, module in model.named_modules():
        if isinstance(module, CKConv) and module.grid_size:  # grid 0 = "same" never resolved: follows the input
            new = rescaled_grid(module.grid_size, from_res, to_res)
            if new != module.grid_size:
                module.set_horizon(new, rescale=True)
            grids[name] = new
        elif isinstance(module, SRFConv):
            module.set_scale_sigma((module.scale_sigma or 1.0) * to_res / from_res)
    return grids


# --- logging -------------------------------------------------------------------------------------------
class PhaseLogger:
    """The run's RunLogger as seen by one phase's Trainer: metric lines get ``phase`` and the global W&B
    step, summary keys get the phase as prefix (``source_best_val_accuracy``, ``finetune_test_accuracy``)."""

    def __init__(self, base: RunLogger, phase: str):
        self.base, self.phase = base, phase

    @property
    def wandb_id(self):
        return self.base.wandb_id

    def log_epoch(self, metrics: dict, step: int) -> None:
        self.base.log_epoch({"phase": self.phase, "step": step, **metrics}, step=step)

    def update_summary(self, **values) -> None:
        self.base.update_summary(**{f"{self.phase}_{key}": value for key, value in values.items()})

    def truncate_metrics(self, epochs_completed: int) -> None:
        """Drop this phase's lines after ``epochs_completed`` (they are redone); other phases' lines stay."""
        path = getattr(self.base, "metrics_path", None)
        if not self.base.enabled or path is None or not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("phase") != self.phase or record.get("epoch", 0) <= epochs_completed:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))


def wandb_log(logger: RunLogger, values: dict, step: int) -> None:
    """Step-wise W&B values outside the epoch lines (metrics.jsonl stays one line per epoch)."""
    logger._wandb_call("log", values, step=step)


# --- resume --------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """What an earlier process of this run left behind."""

    run_dir: Path
    source_last: Path | None = None      # inside the source phase
    source_model: Path | None = None     # source phase finished
    finetune_last: Path | None = None    # inside fine-tuning

    def latest(self) -> Path | None:
        return self.finetune_last or self.source_model or self.source_last

    @property
    def where(self) -> str:
        if self.finetune_last:
            return "fine-tuning"
        if self.source_model:
            return "after the source phase (OOTB test and fine-tuning next)"
        return "the source phase"


def find_run_dir(resume, run_dir: Path) -> Path | None:
    """Run directory named by ``train.resume`` (None = no resume)."""
    resume = parse_resume(resume)
    if resume is False:
        return None
    if resume in (True, "auto"):
        return run_dir
    path = Path(str(resume))
    if path.is_file():
        # <run>/<phase>/checkpoints/<file>.pt
        if path.parent.name == "checkpoints" and path.parent.parent.name in PHASES:
            return path.parents[2]
    elif path.is_dir():
        if (path / "source").is_dir():
            return path
        if path.name in PHASES:
            return path.parent
        if path.name == "checkpoints" and path.parent.name in PHASES:
            return path.parents[1]
    raise CheckpointError(f"train.resume={str(resume)!r} is not a run_crossres.py run: expected its run directory "
                          f"(with source/ and finetune/) or a checkpoint <run>/source|finetune/checkpoints/last.pt")


def find_progress(run_dir: Path) -> Progress:
    def existing(*parts) -> Path | None:
        path = run_dir.joinpath(*parts)
        return path if path.is_file() else None

    return Progress(run_dir, source_last=existing("source", "checkpoints", "last.pt"),
                    source_model=existing("source", "checkpoints", SOURCE_MODEL),
                    finetune_last=existing("finetune", "checkpoints", "last.pt"))


# --- one training phase ----------------------------------------------------------------------------------
@dataclass
class RunContext:
    base: DictConfig          # the crossres config (stored in every checkpoint's CrossResState for resuming)
    run_dir: Path
    device: torch.device
    dist: Dist
    logger: RunLogger
    seed: int
    stop: StopRequest | None = None

    @property
    def resolved_base(self) -> dict:
        return OmegaConf.to_container(self.base, resolve=True)


def train_phase(ctx: RunContext, phase: str, cfg: DictConfig, raw_model, data, *, checkpoint: dict | None,
                step_offset: int, source: dict | None = None, ootb: dict | None = None) -> tuple[Trainer, str, dict]:
    """Train one phase with the engine's Trainer (or continue it from ``checkpoint``); returns the trainer,
    its stop reason and the test result of the phase's best-validation weights (loaded into the model).
    Every phase gets a fresh optimiser and schedule (warm-up again, as the original)."""
    phase_dir = ctx.run_dir / phase
    state = CrossResState(phase=phase, config=ctx.resolved_base, source=source, ootb=ootb)
    logger = PhaseLogger(ctx.logger, phase)
    trainer = build_trainer(cfg, raw_model=raw_model, data=data, device=ctx.device, dist=ctx.dist, logger=logger,
                            checkpoint_dir=phase_dir / "checkpoints", seed=ctx.seed, step_offset=step_offset,
                            crossres=state, stop=ctx.stop)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        logger.truncate_metrics(trainer.epoch)
    try:
        status = trainer.fit()
    except NonFiniteLossError as error:
        ctx.logger.update_summary(status="diverged", phase=phase, error=str(error))
        ctx.logger.finish()
        raise
    if status == "preempted":
        ctx.logger.update_summary(phase=phase)
        stop_after_signal(trainer, ctx.logger, phase_dir / "checkpoints" / "last.pt")
    final = finish_training(trainer, raw_model, data, ctx.device, trainer.settings, logger, phase_dir)
    logger.update_summary(status=status)
    return trainer, status, final


# --- entry points ----------------------------------------------------------------------------------------
def run(cfg: DictConfig, run_dir: Path, explicit: list[str] = ()) -> dict:
    """``run_crossres.py``: the cross-resolution protocol, or checkpoint evaluation at several resolutions."""
    if len(cfg.cross_res.eval_resolutions) > 0:
        validate_config(cfg)
        device = resolve_device(cfg.device)
        return evaluate_at_resolutions(cfg, Path(run_dir), list(explicit), device)
    validate_config(cfg, entry="run_crossres")
    if not cfg.train.do:
        raise ConfigError("train.do=False is invalid for run_crossres.py, which trains; to evaluate a checkpoint at "
                          "several resolutions pass cross_res.eval_resolutions=[16,24,32] pretrained=True "
                          "pretrained_params.filepath=PATH, at one resolution use run_experiment.py train.do=False")
    native_resolution(cfg)
    for warning in config_warnings(cfg):
        print(f"note: {warning}")
    device = resolve_device(cfg.device)
    dist, device = init_distributed(device)
    run_dir = broadcast_from_main(str(run_dir))  # under torchrun rank 0's directory holds the run (as run_experiment)
    with stop_on_signals() as stop:
        return cross_resolution(cfg, Path(run_dir), list(explicit), device, dist, stop)


def cross_resolution(cfg: DictConfig, run_dir: Path, explicit: list[str], device: torch.device, dist: Dist,
                     stop: StopRequest | None = None) -> dict:
    started = time.time()
    if parse_resume(cfg.train.resume) == "auto":
        done = broadcast_from_main(finished_summary(run_dir))
        if done is not None and done.get("phase") == "done":
            print(f"train.resume=auto: {run_dir} is already finished ({done['status']}); not retraining it")
            return done
    resumed_dir = find_run_dir(cfg.train.resume, run_dir)
    progress = find_progress(resumed_dir) if resumed_dir is not None else Progress(run_dir)
    latest = progress.latest()
    latest_checkpoint = load_checkpoint(latest) if latest is not None else None
    if latest_checkpoint is not None:
        stored = CrossResState.of(latest_checkpoint, latest).config
        cfg = config_from_checkpoint(stored, cfg, explicit)
        validate_config(cfg, entry="run_crossres")
        run_dir = progress.run_dir
        print(f"resuming {run_dir} in {progress.where} (from {latest})")
    elif resumed_dir is not None:
        print(f"train.resume: no checkpoint in {resumed_dir} yet, starting a new run")
    seed = broadcast_from_main(draw_seed(int(cfg.seed)))  # seed=-1: every rank uses rank 0's draw
    OmegaConf.update(cfg, "seed", seed, merge=False)
    source_res, target_res = int(cfg.cross_res.source_res), int(cfg.cross_res.target_res)
    _note_replaced_keys(cfg)
    data_state = (latest_checkpoint.get("data_state") or None) if latest_checkpoint else None

    logger = RunLogger(run_dir, enabled=dist.is_main, wandb_cfg=cfg.wandb, debug=bool(cfg.debug),
                       config=OmegaConf.to_container(cfg, resolve=True),
                       resume_id=latest_checkpoint.get("wandb_id") if latest_checkpoint else None)
    ctx = RunContext(cfg, run_dir, device, dist, logger, seed, stop)
    seed_everything(seed, bool(cfg.deterministic))

    # --- source phase ------------------------------------------------------------------------------------
    source_cfg = phase_config(cfg, "source")
    meta = input_meta(source_cfg)
    model = build_model_from_cfg(source_cfg, meta, device)
    no_params = count_parameters(model)
    if dist.is_main:
        print(f"cross-resolution {source_res} -> {target_res}: model {cfg.net.type} / {cfg.conv.type} on {meta.name}, "
              f"{no_params:,} trainable parameters; device {device}; run dir {run_dir}")
        if len(cfg.summary) > 1:
            print(describe_model(model, int(cfg.summary_depth)))
    logger.update_summary(no_params=no_params, dataset=meta.name, protocol=cfg.protocol, seed=seed,
                          net_type=cfg.net.type, conv_type=cfg.conv.type, source_res=source_res, target_res=target_res,
                          finetune_epochs=int(cfg.cross_res.finetune_epochs), run_dir=str(run_dir))

    finetune_checkpoint = load_checkpoint(progress.finetune_last) if progress.finetune_last else None
    if finetune_checkpoint is not None:
        # Killed while fine-tuning: the source and OOTB results travel in the fine-tuning checkpoints and
        # the weights come back with Trainer.restore below.
        source = CrossResState.of(finetune_checkpoint, progress.finetune_last).source
    elif progress.source_model is not None:
        source_state = load_checkpoint(progress.source_model)
        model.load_state_dict(source_state["model"])
        source = CrossResState.of(source_state, progress.source_model).source
        print(f"source phase already done ({source['epochs_completed']} epochs, test accuracy "
              f"{source['accuracy']:.4f}); not retraining it")
    else:
        if progress.source_last is None and cfg.pretrained:
            path = cfg.pretrained_params.filepath
            load_weights(model, load_checkpoint(path)["model"], bool(cfg.pretrained_strict), path)
        source_checkpoint = load_checkpoint(progress.source_last) if progress.source_last else None
        source_data = build_data_from_cfg(source_cfg, device, dist, state=data_state)
        logger.update_summary(status="running", phase="source")
        _banner(dist, f"source phase: {int(source_cfg.train.epochs)} epochs at {source_res}x{source_res}")
        trainer, status, final = train_phase(ctx, "source", source_cfg, model, source_data,
                                             checkpoint=source_checkpoint, step_offset=0)
        source = {"accuracy": final["test_accuracy"], "loss": final["test_loss"], "status": status,
                  "epochs_completed": trainer.epoch, "best_epoch": trainer.best.epoch,
                  "best_test_accuracy": trainer.best.best_test_accuracy, "elapsed_s": trainer.elapsed_s}
        if "test_accuracy_top5" in final:
            source["accuracy_top5"] = final["test_accuracy_top5"]
        _save_source_model(ctx, source)
        del source_data
    source_epochs = int(source["epochs_completed"])
    logger.update_summary(source_accuracy=source["accuracy"], source_epochs_completed=source_epochs,
                          **({"source_accuracy_top5": source["accuracy_top5"]} if "accuracy_top5" in source else {}))

    # --- out of the box at the target resolution -----------------------------------------------------------
    finetune_cfg = phase_config(cfg, "finetune")
    target_data = build_data_from_cfg(finetune_cfg, device, dist, state=data_state)
    grids = move_to_resolution(model, source_res, target_res)
    if uses_kernel_grid(cfg) and set(grids.values()) != {target_res + 1}:
        raise RuntimeError(f"kernel grids after moving to {target_res}: {grids}; expected {target_res + 1} everywhere")
    if finetune_checkpoint is not None:
        ootb = CrossResState.of(finetune_checkpoint, progress.finetune_last).ootb
    else:
        _banner(dist, f"out-of-the-box test at {target_res}x{target_res}")
        test = evaluate(model, target_data.test_loader, device, limit_batches=int(cfg.train.limit_eval_batches),
                        top5=bool(cfg.train.report_top5_acc), mixed_precision=bool(cfg.train.mixed_precision),
                        progress=dist.is_main, desc="ootb test")
        ootb = {"accuracy": test["accuracy"], "loss": test["loss"],
                "kernel_sizes": layer_statistics(model)["kernel_sizes"]}
        if "accuracy_top5" in test:
            ootb["accuracy_top5"] = test["accuracy_top5"]
    difference = ootb["accuracy"] - source["accuracy"]
    logger.update_summary(ootb_accuracy=ootb["accuracy"], ootb_loss=ootb["loss"], ootb_difference=difference,
                          ootb_kernel_sizes=ootb["kernel_sizes"],
                          **({"ootb_accuracy_top5": ootb["accuracy_top5"]} if "accuracy_top5" in ootb else {}))
    if finetune_checkpoint is None:
        wandb_log(logger, {"source_accuracy": source["accuracy"], "ootb_accuracy": ootb["accuracy"],
                           "ootb_difference": difference}, step=source_epochs)
    if dist.is_main:
        print(f"source accuracy {source['accuracy']:.4f} at {source_res} -> out of the box {ootb['accuracy']:.4f} at "
              f"{target_res} (difference {difference:+.4f})")

    # --- fine-tuning -----------------------------------------------------------------------------------------
    logger.update_summary(status="running", phase="finetune")
    _banner(dist, f"fine-tuning: {int(finetune_cfg.train.epochs)} epochs at {target_res}x{target_res}")
    trainer, status, final = train_phase(ctx, "finetune", finetune_cfg, model, target_data,
                                         checkpoint=finetune_checkpoint, step_offset=source_epochs,
                                         source=source, ootb=ootb)
    total_epochs = source_epochs + trainer.epoch
    results = {"source_accuracy": source["accuracy"], "ootb_accuracy": ootb["accuracy"], "ootb_difference": difference,
               "final_accuracy": final["test_accuracy"], "final_best_test_accuracy": trainer.best.best_test_accuracy,
               "no_params": no_params}
    if "test_accuracy_top5" in final:
        results["final_accuracy_top5"] = final["test_accuracy_top5"]
    wandb_log(logger, {"final_accuracy": results["final_accuracy"]}, step=total_epochs)
    # The generic run fields (as run_experiment.py writes them) describe the final, fine-tuned model.
    logger.update_summary(**results, best_val_accuracy=trainer.best.val_accuracy, test_accuracy=final["test_accuracy"],
                          best_test_accuracy=trainer.best.best_test_accuracy, epochs_completed=total_epochs,
                          kernel_sizes=final["kernel_sizes"], status=status, phase="done",
                          wall_time_s=float(source.get("elapsed_s", 0.0)) + trainer.elapsed_s,
                          process_time_s=time.time() - started)
    close_run(cfg, dist, model, run_dir, logger, target_data.meta, _results_table(source_res, target_res, results))
    return {**logger.summary, **results}


def _banner(dist: Dist, text: str) -> None:
    if dist.is_main:
        print(f"\n=== {text} ===")


def _note_replaced_keys(cfg) -> None:
    """run_crossres.py sets these per phase (as the original); say so when the user set them."""
    horizon = cfg.conv.horizon
    if cfg.conv.type != "Conv" and horizon not in ("same", None):
        print(f"note: conv.horizon={horizon} is replaced by resolution + 1 in each phase "
              f"({cfg.cross_res.source_res + 1}, then {cfg.cross_res.target_res + 1})")
    if cfg.kernel.regularize and cfg.kernel.regularize_params.res is not None:
        print(f"note: kernel.regularize_params.res={cfg.kernel.regularize_params.res} is replaced by resolution + 1 "
              f"(+ res_offset in the source phase)")
    if cfg.cross_res.resize:
        print(f"note: cross_res.resize={cfg.cross_res.resize!r} is replaced by the phase's resolution")


def _save_source_model(ctx: RunContext, source: dict) -> None:
    """Mark the source phase as done: its best-validation checkpoint plus the source result."""
    if not ctx.dist.is_main:
        return
    checkpoints = ctx.run_dir / "source" / "checkpoints"
    state = load_checkpoint(checkpoints / "best.pt")
    state.pop("format", None)
    state["crossres"] = {**state["crossres"], "complete": True, "source": source}
    save_checkpoint(state, checkpoints / SOURCE_MODEL)


def _results_table(source_res: int, target_res: int, results: dict) -> str:
    rows = [(f"source accuracy @{source_res}", results["source_accuracy"]),
            (f"out of the box @{target_res}", results["ootb_accuracy"]),
            ("difference", results["ootb_difference"]),
            (f"final accuracy @{target_res} (best-val epoch)", results["final_accuracy"])]
    if results["final_best_test_accuracy"] is not None:  # protocol=paper only
        rows.append(("best test accuracy during fine-tuning", results["final_best_test_accuracy"]))
    width = max(len(name) for name, _ in rows)
    return "\n".join([f"{'':-<{width + 12}}"] + [f"{name:<{width}}  {100 * value:8.2f} %" for name, value in rows]
                     + [f"{'no_params':<{width}}  {results['no_params']:>10,}"])


# --- one checkpoint at several resolutions ------------------------------------------------------------------
def evaluate_at_resolutions(cfg: DictConfig, run_dir: Path, explicit: list[str], device: torch.device) -> dict:
    """Test one trained checkpoint at every resolution of ``cross_res.eval_resolutions`` (no training).

    The model is rebuilt from the checkpoint's config and moved from its training resolution (the
    checkpoint config's ``cross_res.resize``, else the dataset's native size) to each resolution with
    :func:`move_to_resolution`. Writes ``summary.json`` (``accuracy_by_resolution``), ``accuracy_by_resolution.csv``
    and ``accuracy_vs_resolution.png`` into the run directory and prints a table.
    """
    path = cfg.pretrained_params.filepath
    if not cfg.pretrained or not path:
        raise ConfigError(f"cross_res.eval_resolutions={list(cfg.cross_res.eval_resolutions)} evaluates a checkpoint: "
                          f"pass pretrained=True pretrained_params.filepath=PATH (e.g. <run>/finetune/checkpoints/best.pt)")
    resolutions = [int(r) for r in cfg.cross_res.eval_resolutions]  # from this command, not the checkpoint
    checkpoint = load_checkpoint(path)
    cfg = config_from_checkpoint(checkpoint["config"], cfg, explicit)
    validate_config(cfg)
    native = native_resolution(cfg)
    trained = parse_resize(cfg.cross_res.resize) or native
    seed_everything(int(cfg.seed))
    model = build_model_from_cfg(cfg, input_meta(cfg), device)
    print(f"evaluating {path} (trained at {trained}x{trained}) at resolutions {resolutions}")
    rows = []
    for resolution in resolutions:
        load_weights(model, checkpoint["model"], bool(cfg.pretrained_strict), path)  # back to the trained grid
        grids = move_to_resolution(model, trained, resolution)
        data = build_data_from_cfg(with_resolution(cfg, resolution, native), device, Dist(),
                                   state=checkpoint.get("data_state") or None)
        test = evaluate(model, data.test_loader, device, limit_batches=int(cfg.train.limit_eval_batches),
                        top5=bool(cfg.train.report_top5_acc), progress=True, desc=f"test @{resolution}")
        grid_sizes = sorted(set(grids.values()))
        row = {"resolution": resolution, "accuracy": test["accuracy"], "loss": test["loss"],
               # taps per dimension of the CKConv/FlexConv grids (None: no such layers)
               "kernel_grid": grid_sizes[0] if len(grid_sizes) == 1 else (grids or None),
               "kernel_sizes": layer_statistics(model)["kernel_sizes"]}
        if "accuracy_top5" in test:
            row["accuracy_top5"] = test["accuracy_top5"]
        rows.append(row)
        print(f"  {resolution:>4}x{resolution:<4} accuracy {test['accuracy']:.4f}  loss {test['loss']:.4f}")

    table = format_resolution_table(rows, trained)
    print(table)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(run_dir / "accuracy_by_resolution.csv", rows)
    plot = plot_accuracy_vs_resolution(rows, trained, run_dir / "accuracy_vs_resolution.png", title=str(path))
    logger = RunLogger(run_dir, wandb_cfg=cfg.wandb, debug=bool(cfg.debug), config=OmegaConf.to_container(cfg, resolve=True))
    summary = {"checkpoint": str(path), "checkpoint_epoch": checkpoint.get("epoch"), "dataset": cfg.dataset,
               "trained_resolution": trained, "no_params": count_parameters(model),
               # not "evaluated": experiments/make_tables.py must not count this as a run of the preset
               "status": "evaluated_at_resolutions",
               "accuracy_by_resolution": {str(r["resolution"]): r["accuracy"] for r in rows},
               "loss_by_resolution": {str(r["resolution"]): r["loss"] for r in rows},
               "evaluations": rows, "plot": str(plot) if plot else None}
    logger.update_summary(**summary)
    logger.finish()
    return summary


def format_resolution_table(rows: list[dict], trained: int) -> str:
    lines = [f"{'resolution':>10}  {'kernel grid':>11}  {'accuracy':>9}  {'loss':>8}"]
    for row in rows:
        grid = row["kernel_grid"]
        grid = "-" if grid is None else grid if isinstance(grid, int) else "mixed"
        mark = "  <- trained" if row["resolution"] == trained else ""
        lines.append(f"{row['resolution']:>10}  {grid:>11}  {100 * row['accuracy']:8.2f}%  {row['loss']:8.4f}{mark}")
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    lines = ["resolution,accuracy,loss"] + [f"{r['resolution']},{r['accuracy']:.6f},{r['loss']:.6f}" for r in rows]
    path.write_text("\n".join(lines) + "\n")


def plot_accuracy_vs_resolution(rows: list[dict], trained: int, path: Path, title: str = "") -> Path | None:
    """PNG of test accuracy against input resolution (None if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plot written")
        return None
    ordered = sorted(rows, key=lambda r: r["resolution"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["resolution"] for r in ordered], [100 * r["accuracy"] for r in ordered], marker="o")
    ax.axvline(trained, color="grey", linestyle="--", linewidth=1, label=f"trained at {trained}")
    ax.set_xlabel("input resolution (pixels per side)")
    ax.set_ylabel("test accuracy (%)")
    if title:
        ax.set_title("/".join(Path(title).parts[-4:]), fontsize=8)  # e.g. <run>/finetune/checkpoints/best.pt
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
