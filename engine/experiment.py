"""One run of ``run_experiment.py``: train (or resume) and test, or evaluate a checkpoint
(``train.do=False pretrained=True pretrained_params.filepath=PATH``, or ``pretrained_wandb=True``; this project's
checkpoints or the original code's).

The run directory gets ``metrics.jsonl``, ``summary.json`` and ``checkpoints/{last,best}.pt``.
"""
from __future__ import annotations

import time
from pathlib import Path

from models import count_parameters

from .build import build_run_data, build_trainer, input_meta, load_pretrained
from .checkpoint import load_checkpoint
from .lifecycle import Run, SpecSource, finish_training, finished_summary, resume_path, start_run, stop_after_signal
from .resample import at_test_rate
from .runtime import broadcast_from_main
from .sampling_rates import evaluate_at_sampling_rates
from .stored import open_for_evaluation
from .tasks import get_task
from .trainer import NonFiniteLossError, evaluate_with, layer_statistics, result_fields


def run(source: SpecSource, run_dir: Path) -> dict:
    """Train and test (or evaluate a checkpoint when ``train.do=False``). Returns the summary.

    ``source``: the command's run spec (``config.SpecReader``); a resumed or evaluated checkpoint's stored config
    is read through it, with the keys set on the command line winning.
    """
    spec = source.spec
    with start_run(spec, run_dir, signals=spec.loop.train) as run_:
        if not spec.loop.train and spec.loop.test_sampling_rates:
            return evaluate_at_sampling_rates(source, run_)
        if not spec.loop.train:
            return evaluate_checkpoint(source, run_)
        return train(source, run_)


def train(source: SpecSource, run: Run) -> dict:
    started = time.time()
    spec, run_dir = source.spec, run.run_dir
    if spec.runtime.resume == "auto":
        done = broadcast_from_main(finished_summary(run_dir))
        if done is not None:
            print(f"train.resume=auto: {run_dir} is already finished ({done['status']}, "
                  f"{done.get('epochs_completed')} epochs); not retraining it")
            return done
    checkpoint = None
    path = resume_path(spec.runtime.resume, run_dir)
    if path is not None:
        checkpoint = load_checkpoint(path)
        spec = source.with_stored(checkpoint["config"], checkpoint.get("model_spec"))
        if path.parent.name == "checkpoints":
            run_dir = path.parent.parent  # keep writing into the interrupted run's directory
        print(f"resuming from {path} (epoch {checkpoint['epoch']}) in {run_dir}")
    spec = run.seed(spec, fixed_seed=checkpoint["config"]["seed"] if checkpoint else None)

    # The model first: it needs only the data's shape, so a model the layers reject fails before any data
    # is read.
    meta = input_meta(spec)
    model = run.model(spec, meta)
    no_params = count_parameters(model)
    if spec.runtime.loads_pretrained and checkpoint is None:
        load_pretrained(model, spec, run_dir)
    data = build_run_data(spec, run.device, run.dist, state=checkpoint["data_state"] if checkpoint else None)

    logger = run.logger(spec, run_dir, resume_id=checkpoint.get("wandb_id") if checkpoint else None)
    trainer = build_trainer(spec, raw_model=model, data=data, device=run.device, dist=run.dist, logger=logger,
                            checkpoint_dir=run_dir / "checkpoints", stop=run.stop)
    if checkpoint is not None:
        trainer.restore(checkpoint)
        logger.truncate_metrics(trainer.epoch)
        logger.summary.pop("error", None)  # the reason an earlier attempt stopped no longer holds
    logger.update_summary(no_params=no_params, dataset=meta.name, protocol=spec.data.protocol,
                          seed=spec.runtime.seed, net_type=spec.model.net.type, conv_type=spec.model.conv.type,
                          status="running", run_dir=str(run_dir))
    if spec.loop.test_before_train and checkpoint is None:
        metric = get_task(spec.data.task).metric
        with at_test_rate(model, spec.data):
            before = evaluate_with(spec, model, data.test_loader, run.device, progress=run.is_main, desc="test")
        logger.update_summary(**{f"test_{metric}_before_train": before[metric]})
        run.say(f"test {metric} before training: {before[metric]:.4f}")
    try:
        status = trainer.fit()
    except NonFiniteLossError as error:
        logger.update_summary(status="diverged", error=str(error))
        logger.finish()
        raise
    if status == "preempted":
        stop_after_signal(trainer, logger, run_dir / "checkpoints" / "last.pt")
    summary = finish_training(trainer, model, data, run.device, logger, run_dir)
    logger.update_summary(status=status, wall_time_s=trainer.elapsed_s, process_time_s=time.time() - started)
    run.close(spec, model, logger, meta, run_dir=run_dir)
    return {**summary, **logger.summary}


def evaluate_checkpoint(source: SpecSource, run: Run) -> dict:
    """``train.do=False``: rebuild the model from the checkpoint's model spec (an original checkpoint: from this
    command's config), load strictly, test."""
    opened = open_for_evaluation(source, run)
    path, checkpoint, spec, model = opened.path, opened.checkpoint, opened.spec, opened.model
    data = build_run_data(spec, run.device, run.dist, state=opened.data_state)
    with at_test_rate(model, spec.data):  # dataset_params.sr_test: the kernels resampled for it
        test = evaluate_with(spec, model, data.test_loader, run.device, progress=run.is_main, desc="test")
    metric = get_task(spec.data.task).metric
    logger = run.logger(spec)
    summary = {**result_fields(test), "no_params": count_parameters(model), "checkpoint": str(path),
               "checkpoint_epoch": checkpoint.get("epoch"), "dataset": data.meta.name, "status": "evaluated",
               **layer_statistics(model)}
    logger.update_summary(**summary)
    run.close(spec, model, logger, data.meta,
              f"test {metric} of {path}: {test[metric]:.4f} ({count_parameters(model):,} parameters)")
    return summary
