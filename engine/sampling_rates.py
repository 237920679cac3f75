"""One trained sequence checkpoint at several test sampling rates, without training::

    python run_experiment.py train.do=False pretrained=True pretrained_params.filepath=<run>/checkpoints/best.pt \\
        "test.sampling_rates=[1,2,4]"

Each value ``k`` is an ``sr_test``: the test sequences are every ``k``-th sample (sampling rate ``1/k`` of the
original signal). The model is rebuilt from the checkpoint (its model spec, and its config's ``sr_train``, the
rate it was trained at) and, for each ``k``, its continuous kernels are resampled on the grid of that rate
(``engine/resample.py``), then tested. Writes into the run directory ``summary.json``
(``<metric>_by_sampling_rate``), ``<metric>_by_sampling_rate.csv`` and ``<metric>_vs_sampling_rate.png`` (the
metric: ``accuracy``, or ``mse`` for the adding problem) and prints the table. The datasets that take sampling
rates: Speech Commands and Character Trajectories.
"""
from __future__ import annotations

import dataclasses

from models import count_parameters

from .build import build_run_data, input_meta
from .lifecycle import Run, SpecSource
from .resample import at_sampling_step, continuous_layers
from .resolutions import plot_metric_against, write_table_csv
from .runtime import Dist
from .specs import RunSpec
from .stored import open_for_evaluation
from .tasks import Task, get_task
from .trainer import evaluate_with, layer_statistics


def with_test_rate(spec: RunSpec, sr_test: int) -> RunSpec:
    """The run spec whose test data is read at every ``sr_test``-th sample (as ``crossres.with_resolution`` is
    the spec at another resolution; ``resample.at_test_rate`` is the model's side)."""
    return dataclasses.replace(spec, data=spec.data.at_sampling_rate(sr_test))


def evaluate_at_sampling_rates(source: SpecSource, run: Run) -> dict:
    """Test one trained checkpoint at every rate of ``test.sampling_rates`` (from this command)."""
    rates = list(source.spec.loop.test_sampling_rates)
    opened = open_for_evaluation(source, run)
    path, checkpoint, spec, model = opened.path, opened.checkpoint, opened.spec, opened.model
    task = get_task(spec.data.task)
    trained = spec.data.sr_train
    meta = input_meta(spec)
    print(f"evaluating {path} (trained at sr_train={trained}: {meta.length} steps) at sr_test {rates}")
    rows = []
    for rate in rates:
        at_rate = with_test_rate(spec, rate)
        data = build_run_data(at_rate, run.device, Dist(), state=opened.data_state)
        with at_sampling_step(model, trained, rate, tuple(meta.input_shape)):
            test = evaluate_with(at_rate, model, data.test_loader, run.device, progress=True, desc=f"test @sr {rate}")
            kernel_sizes = layer_statistics(model)["kernel_sizes"]
            grids = {name: module.grid_size for name, module in continuous_layers(model)}
        grid_sizes = sorted(set(grids.values()))
        rows.append({"sampling_rate": rate, "steps": data.test_loader.dataset[0][0].shape[-1], **test,
                     # taps of the CKConv/FlexConv grids at this rate (None: no such layers)
                     "kernel_grid": grid_sizes[0] if len(grid_sizes) == 1 else (grids or None),
                     "kernel_sizes": kernel_sizes})
        print(f"  sr_test {rate:>3}: {task.metric} {test[task.metric]:.4f}  loss {test['loss']:.4f}")

    print(format_rate_table(rows, trained, task))
    run_dir = run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    metric = task.metric
    write_table_csv(run_dir / f"{metric}_by_sampling_rate.csv", rows, ("sampling_rate", "steps", metric, "loss"))
    plot = plot_metric_against(rows, "sampling_rate", metric, run_dir / f"{metric}_vs_sampling_rate.png",
                               trained=trained, xlabel="sr_test (every k-th sample; sampling rate 1/k)",
                               ylabel="test accuracy (%)" if task.higher_is_better else f"test {metric}",
                               percent=task.higher_is_better, title=str(path), log2_x=True)
    logger = run.logger(spec)
    summary = {"checkpoint": str(path), "checkpoint_epoch": checkpoint.get("epoch"), "dataset": spec.data.name,
               "trained_sampling_rate": trained, "no_params": count_parameters(model),
               # not "evaluated": experiments/make_tables.py must not count this as a run of the preset
               "status": "evaluated_at_sampling_rates",
               f"{metric}_by_sampling_rate": {str(r["sampling_rate"]): r[metric] for r in rows},
               "loss_by_sampling_rate": {str(r["sampling_rate"]): r["loss"] for r in rows},
               "evaluations": rows, "plot": str(plot) if plot else None}
    logger.update_summary(**summary)
    logger.finish()
    return summary


def format_rate_table(rows: list[dict], trained: int, task: Task) -> str:
    """The printed table: one line per test rate, the training rate marked."""
    metric = task.metric
    lines = [f"{'sr_test':>7}  {'rate':>6}  {'steps':>6}  {'kernel grid':>11}  {metric:>9}  {'loss':>8}"]
    for row in rows:
        grid = row["kernel_grid"]
        grid = "-" if grid is None else grid if isinstance(grid, int) else "mixed"
        value = f"{100 * row[metric]:8.2f}%" if task.higher_is_better else f"{row[metric]:9.4f}"
        mark = "  <- trained" if row["sampling_rate"] == trained else ""
        lines.append(f"{row['sampling_rate']:>7}  {'1/' + str(row['sampling_rate']):>6}  {row['steps']:>6}  "
                     f"{grid:>11}  {value}  {row['loss']:8.4f}{mark}")
    return "\n".join(lines)
