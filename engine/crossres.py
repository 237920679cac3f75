"""Cross-resolution runs of ``run_crossres.py``: train at ``cross_res.source_res``, test out of
the box at ``cross_res.target_res``, fine-tune there for ``cross_res.finetune_epochs``.

Phases (one run directory; each training phase keeps its own checkpoints)::

    <run>/source/checkpoints/{last,best}.pt      training at the source resolution (the engine's Trainer)
    <run>/source/checkpoints/source_model.pt     the source phase is done: its best-validation weights
    <run>/finetune/checkpoints/{last,best}.pt    fine-tuning at the target resolution
    <run>/metrics.jsonl, summary.json            both phases (metric lines carry ``phase``)

A phase is the run spec with its resolution and epochs replaced (:func:`phase_spec`):

* source: the images are resized to ``source_res`` (``dataset=Imagenet-k``: the stored set
  ``Imagenet{source_res}`` is read instead, and ``Imagenet{target_res}`` for the target phase); CKConv/FlexConv
  nets get ``conv.horizon = source_res + 1``; the anti-aliasing penalty uses ``source_res + 1 + res_offset`` taps.
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

Every checkpoint stores the run's config, the model spec of its weights and the phase (``crossres``), so
``run_experiment.py train.do=False`` evaluates one of them at the phase's resolution without further overrides.
``cross_res.eval_resolutions=[16,24,32]`` evaluates one checkpoint at several resolutions instead
(:mod:`engine.resolutions`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ckconv import CKConv, SRFConv
from models import count_parameters
from models.layers import CK_NET_TYPES, CONTINUOUS_CONV_TYPES

from .build import build_run_data, build_trainer, input_meta, load_pretrained, pretrained_file, with_pretrained_file
from .checkpoint import CheckpointError, CrossResState, load_checkpoint, save_checkpoint
from .lifecycle import Run, SpecSource, finish_training, finished_summary, start_run, stop_after_signal
from .logger import PhaseLogger, RunLogger
from .runtime import broadcast_from_main
from .specs import RunSpec
from .trainer import NonFiniteLossError, Trainer, evaluate_with, layer_statistics

PHASES = ("source", "finetune")
SOURCE_MODEL = "source_model.pt"  # written when the source phase is finished (the original's final_source_res_model.pt)


# --- phases ----------------------------------------------------------------------------------------------
def phase_resolution(spec: RunSpec, phase: str) -> int:
    return spec.cross_res.source_res if phase == "source" else spec.cross_res.target_res


def with_resolution(spec: RunSpec, resolution: int) -> RunSpec:
    """The spec whose data is at ``resolution`` px: the images resized to it (no resize at the dataset's native
    size) or, for ``dataset=Imagenet-k``, the stored set ``Imagenet{resolution}`` read as it is (the original
    swapped the dataset per phase instead of resizing)."""
    return dataclasses.replace(spec, data=spec.data.at_resolution(resolution))


def phase_data(spec: RunSpec, phase: str) -> RunSpec:
    """What a phase changes besides the model: the data's resolution, the anti-aliasing budget
    (``resolution + 1`` taps, ``+ res_offset`` in the source phase) and, when fine-tuning, the epochs."""
    resolution = phase_resolution(spec, phase)
    spec = with_resolution(spec, resolution)
    aa = spec.loss.anti_aliasing
    if aa is not None:
        res = resolution + 1 + (aa.res_offset if phase == "source" else 0)
        spec = dataclasses.replace(spec, loss=dataclasses.replace(spec.loss,
                                                                  anti_aliasing=dataclasses.replace(aa, res=res)))
    if phase == "finetune":
        spec = dataclasses.replace(spec, loop=dataclasses.replace(spec.loop, epochs=spec.cross_res.finetune_epochs))
    return spec


def phase_spec(base: RunSpec, phase: str) -> RunSpec:
    """The spec of one phase: :func:`phase_data`, and the model at the phase's grid - ``conv.horizon =
    resolution + 1`` (a plain Conv keeps its kernel size, as in the original) and, when fine-tuning, what
    :func:`move_to_resolution` does to the layers (kernel scale ``(source/target)^2``, N-Jet sigma
    ``target/source``), so that the spec describes the model."""
    spec = phase_data(base, phase)
    model = base.model
    if model.conv.type != "Conv":
        model = dataclasses.replace(model, conv=dataclasses.replace(model.conv, horizon=phase_resolution(base, phase) + 1))
    if phase == "finetune":
        source, target = base.cross_res.source_res, base.cross_res.target_res
        kernel = model.kernel
        model = dataclasses.replace(model, kernel=dataclasses.replace(
            kernel, sampling_rate_norm=kernel.sampling_rate_norm * (source / target) ** 2,
            srf_scale=(kernel.srf_scale or 1.0) * target / source))
    return dataclasses.replace(spec, model=model)


def uses_kernel_grid(spec: RunSpec) -> bool:
    """Nets whose kernels live on a ``conv.horizon`` grid (CKConv / FlexConv layers)."""
    return spec.model.net.type in CK_NET_TYPES and spec.model.conv.type in CONTINUOUS_CONV_TYPES


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
def train_phase(run: Run, base: RunSpec, phase: str, raw_model, data, logger: RunLogger, *,
                checkpoint: dict | None, step_offset: int, source: dict | None = None,
                ootb: dict | None = None) -> tuple[Trainer, str, dict]:
    """Train one phase with the engine's Trainer (or continue it from ``checkpoint``); returns the trainer,
    its stop reason and the test result of the phase's best-validation weights (loaded into the model).
    Every phase gets a fresh optimiser and schedule (warm-up again, as the original)."""
    phase_dir = run.run_dir / phase
    state = CrossResState(phase=phase, config=dict(base.config), source=source, ootb=ootb)
    phase_logger = PhaseLogger(logger, phase)
    trainer = build_trainer(phase_spec(base, phase), raw_model=raw_model, data=data, device=run.device,
                            dist=run.dist, logger=phase_logger, checkpoint_dir=phase_dir / "checkpoints",
                            step_offset=step_offset, crossres=state, stop=run.stop)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        phase_logger.truncate_metrics(trainer.epoch)
    try:
        status = trainer.fit()
    except NonFiniteLossError as error:
        logger.update_summary(status="diverged", phase=phase, error=str(error))
        logger.finish()
        raise
    if status == "preempted":
        logger.update_summary(phase=phase)
        stop_after_signal(trainer, logger, phase_dir / "checkpoints" / "last.pt")
    final = finish_training(trainer, raw_model, data, run.device, phase_logger, phase_dir)
    phase_logger.update_summary(status=status)
    return trainer, status, final


# --- the protocol ----------------------------------------------------------------------------------------
def run(source: SpecSource, run_dir: Path) -> dict:
    """``run_crossres.py``: the cross-resolution protocol, or checkpoint evaluation at several resolutions."""
    spec = source.spec
    if spec.cross_res.eval_resolutions:
        from .resolutions import evaluate_at_resolutions

        with start_run(spec, run_dir, signals=False) as run_:
            return evaluate_at_resolutions(source, run_)
    with start_run(spec, run_dir) as run_:
        return cross_resolution(source, run_)


def cross_resolution(source: SpecSource, run: Run) -> dict:
    started = time.time()
    spec = source.spec
    if spec.runtime.resume == "auto":
        done = broadcast_from_main(finished_summary(run.run_dir))
        if done is not None:
            print(f"train.resume=auto: {run.run_dir} is already finished ({done['status']}); not retraining it")
            return done
    resumed_dir = find_run_dir(spec.runtime.resume, run.run_dir)
    progress = find_progress(resumed_dir) if resumed_dir is not None else Progress(run.run_dir)
    latest = progress.latest()
    latest_checkpoint = load_checkpoint(latest) if latest is not None else None
    if latest_checkpoint is not None:
        spec = source.with_stored(CrossResState.of(latest_checkpoint, latest).config)
        run.run_dir = progress.run_dir
        print(f"resuming {run.run_dir} in {progress.where} (from {latest})")
    elif resumed_dir is not None:
        print(f"train.resume: no checkpoint in {resumed_dir} yet, starting a new run")
    spec = run.seed(spec)  # a resumed run's stored config holds the seed it drew
    if latest_checkpoint is None and spec.runtime.pretrained_wandb is not None:
        # Downloaded before anything is written, so a failed download leaves the run directory as it was.
        spec = with_pretrained_file(spec, pretrained_file(spec, run.run_dir))
    source_res, target_res = spec.cross_res.source_res, spec.cross_res.target_res
    data_state = (latest_checkpoint.get("data_state") or None) if latest_checkpoint else None
    logger = run.logger(spec, resume_id=latest_checkpoint.get("wandb_id") if latest_checkpoint else None)

    # --- source phase ------------------------------------------------------------------------------------
    source_spec = phase_spec(spec, "source")
    meta = input_meta(source_spec)
    model = run.model(source_spec, meta, what=f"cross-resolution {source_res} -> {target_res}: model")
    no_params = count_parameters(model)
    logger.update_summary(no_params=no_params, dataset=meta.name, protocol=spec.data.protocol, seed=spec.runtime.seed,
                          net_type=spec.model.net.type, conv_type=spec.model.conv.type, source_res=source_res,
                          target_res=target_res, finetune_epochs=spec.cross_res.finetune_epochs,
                          run_dir=str(run.run_dir))

    finetune_checkpoint = load_checkpoint(progress.finetune_last) if progress.finetune_last else None
    if finetune_checkpoint is not None:
        # Killed while fine-tuning: the source and OOTB results travel in the fine-tuning checkpoints and
        # the weights come back with Trainer.restore below.
        source_result = CrossResState.of(finetune_checkpoint, progress.finetune_last).source
    elif progress.source_model is not None:
        source_state = load_checkpoint(progress.source_model)
        model.load_state_dict(source_state["model"])
        source_result = CrossResState.of(source_state, progress.source_model).source
        print(f"source phase already done ({source_result['epochs_completed']} epochs, test accuracy "
              f"{source_result['accuracy']:.4f}); not retraining it")
    else:
        if progress.source_last is None and spec.runtime.loads_pretrained:
            load_pretrained(model, spec, run.run_dir)
        source_checkpoint = load_checkpoint(progress.source_last) if progress.source_last else None
        source_data = build_run_data(source_spec, run.device, run.dist, state=data_state)
        logger.update_summary(status="running", phase="source")
        _banner(run, f"source phase: {source_spec.loop.epochs} epochs at {source_res}x{source_res}")
        trainer, status, final = train_phase(run, spec, "source", model, source_data, logger,
                                             checkpoint=source_checkpoint, step_offset=0)
        source_result = {**phase_test(final), "status": status, "epochs_completed": trainer.epoch,
                         "best_epoch": trainer.best.epoch, "best_test_accuracy": trainer.best.best_test_metric,
                         "elapsed_s": trainer.elapsed_s}
        _save_source_model(run, source_result)
        del source_data
    source_epochs = int(source_result["epochs_completed"])
    logger.update_summary(source_epochs_completed=source_epochs,
                          **accuracy_fields(source_result, "source_"))

    # --- out of the box at the target resolution -----------------------------------------------------------
    finetune_spec = phase_spec(spec, "finetune")
    target_data = build_run_data(finetune_spec, run.device, run.dist, state=data_state)
    grids = move_to_resolution(model, source_res, target_res)
    if uses_kernel_grid(spec) and set(grids.values()) != {target_res + 1}:
        raise RuntimeError(f"kernel grids after moving to {target_res}: {grids}; expected {target_res + 1} everywhere")
    if finetune_checkpoint is not None:
        ootb = CrossResState.of(finetune_checkpoint, progress.finetune_last).ootb
    else:
        _banner(run, f"out-of-the-box test at {target_res}x{target_res}")
        test = evaluate_with(finetune_spec, model, target_data.test_loader, run.device, progress=run.is_main,
                             desc="ootb test")
        ootb = {**test, "kernel_sizes": layer_statistics(model)["kernel_sizes"]}
    difference = ootb["accuracy"] - source_result["accuracy"]
    logger.update_summary(ootb_difference=difference, ootb_loss=ootb["loss"], ootb_kernel_sizes=ootb["kernel_sizes"],
                          **accuracy_fields(ootb, "ootb_"))
    if finetune_checkpoint is None:
        logger.log_step({"source_accuracy": source_result["accuracy"], "ootb_accuracy": ootb["accuracy"],
                         "ootb_difference": difference}, step=source_epochs)
    run.say(f"source accuracy {source_result['accuracy']:.4f} at {source_res} -> out of the box "
            f"{ootb['accuracy']:.4f} at {target_res} (difference {difference:+.4f})")

    # --- fine-tuning -----------------------------------------------------------------------------------------
    logger.update_summary(status="running", phase="finetune")
    _banner(run, f"fine-tuning: {finetune_spec.loop.epochs} epochs at {target_res}x{target_res}")
    trainer, status, final = train_phase(run, spec, "finetune", model, target_data, logger,
                                         checkpoint=finetune_checkpoint, step_offset=source_epochs,
                                         source=source_result, ootb=ootb)
    total_epochs = source_epochs + trainer.epoch
    results = {"source_accuracy": source_result["accuracy"], "ootb_accuracy": ootb["accuracy"],
               "ootb_difference": difference, "final_accuracy": final["test_accuracy"],
               "final_best_test_accuracy": trainer.best.best_test_metric, "no_params": no_params}
    if "test_accuracy_top5" in final:
        results["final_accuracy_top5"] = final["test_accuracy_top5"]
    logger.log_step({"final_accuracy": results["final_accuracy"]}, step=total_epochs)
    # The generic run fields (as run_experiment.py writes them) describe the final, fine-tuned model.
    logger.update_summary(**results, best_val_accuracy=trainer.best.val_metric, test_accuracy=final["test_accuracy"],
                          best_test_accuracy=trainer.best.best_test_metric, epochs_completed=total_epochs,
                          kernel_sizes=final["kernel_sizes"], status=status, phase="done",
                          wall_time_s=float(source_result.get("elapsed_s", 0.0)) + trainer.elapsed_s,
                          process_time_s=time.time() - started)
    run.close(finetune_spec, model, logger, target_data.meta, _results_table(source_res, target_res, results))
    return {**logger.summary, **results}


def phase_test(final: dict) -> dict:
    """A phase's test result (``accuracy``, ``loss``, ``accuracy_top5``) from :func:`finish_training`'s summary
    fields (``test_accuracy``, ...)."""
    return {key[len("test_"):]: value for key, value in final.items() if key.startswith("test_")}


def accuracy_fields(result: dict, prefix: str) -> dict:
    """The accuracies of a phase result (``accuracy`` and, where reported, ``accuracy_top5``) as summary fields."""
    return {prefix + key: result[key] for key in ("accuracy", "accuracy_top5") if key in result}


def _banner(run: Run, text: str) -> None:
    run.say(f"\n=== {text} ===")


def _save_source_model(run: Run, source: dict) -> None:
    """Mark the source phase as done: its best-validation checkpoint plus the source result."""
    if not run.is_main:
        return
    checkpoints = run.run_dir / "source" / "checkpoints"
    state = load_checkpoint(checkpoints / "best.pt")
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
