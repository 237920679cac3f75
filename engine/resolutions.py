"""One trained checkpoint at several input resolutions (``run_crossres.py cross_res.eval_resolutions=[16,24,32]
pretrained=True pretrained_params.filepath=PATH``), without training.

The model is rebuilt from the checkpoint (its model spec, at the resolution it was trained at: the phase's for a
``run_crossres.py`` checkpoint, else its config's ``cross_res.resize`` or the dataset's native size; for a
checkpoint of the original code, from this command's config at the phase its kernel grid shows,
``engine.stored.original_spec``) and moved
to each resolution with :func:`engine.crossres.move_to_resolution`. Writes ``summary.json``
(``accuracy_by_resolution``), ``accuracy_by_resolution.csv`` and ``accuracy_vs_resolution.png`` into the run
directory and prints a table.
"""
from __future__ import annotations

from pathlib import Path

from datasets import dataset_meta
from datasets.paths import atomic_write
from models import count_parameters

from .build import build_run_data
from .crossres import move_to_resolution, with_resolution
from .lifecycle import Run, SpecSource
from .runtime import Dist
from .stored import open_for_evaluation
from .trainer import evaluate_with, layer_statistics


def evaluate_at_resolutions(source: SpecSource, run: Run) -> dict:
    """Test one trained checkpoint at every resolution of ``cross_res.eval_resolutions`` (from this command)."""
    resolutions = list(source.spec.cross_res.eval_resolutions)
    opened = open_for_evaluation(source, run)
    path, checkpoint, spec, model = opened.path, opened.checkpoint, opened.spec, opened.model
    trained = spec.data.resolution or dataset_meta(spec.data.name).length
    print(f"evaluating {path} (trained at {trained}x{trained}) at resolutions {resolutions}")
    rows = []
    for index, resolution in enumerate(resolutions):
        if index:
            opened.reload()  # back to the trained grid
        grids = move_to_resolution(model, trained, resolution)
        at_resolution = with_resolution(spec, resolution)
        data = build_run_data(at_resolution, run.device, Dist(), state=opened.data_state)
        test = evaluate_with(at_resolution, model, data.test_loader, run.device, progress=True,
                             desc=f"test @{resolution}")
        grid_sizes = sorted(set(grids.values()))
        rows.append({"resolution": resolution, **test,
                     # taps per dimension of the CKConv/FlexConv grids (None: no such layers)
                     "kernel_grid": grid_sizes[0] if len(grid_sizes) == 1 else (grids or None),
                     "kernel_sizes": layer_statistics(model)["kernel_sizes"]})
        print(f"  {resolution:>4}x{resolution:<4} accuracy {test['accuracy']:.4f}  loss {test['loss']:.4f}")

    table = format_resolution_table(rows, trained)
    print(table)
    run_dir = run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(run_dir / "accuracy_by_resolution.csv", rows)
    plot = plot_accuracy_vs_resolution(rows, trained, run_dir / "accuracy_vs_resolution.png", title=str(path))
    logger = run.logger(spec)
    summary = {"checkpoint": str(path), "checkpoint_epoch": checkpoint.get("epoch"), "dataset": spec.data.name,
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
    write_table_csv(path, rows, ("resolution", "accuracy", "loss"))


def write_table_csv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """``columns`` of ``rows`` as a CSV file (floats with 6 decimals), written atomically."""
    def cell(value) -> str:
        return f"{value:.6f}" if isinstance(value, float) else str(value)

    lines = [",".join(columns)] + [",".join(cell(row[column]) for column in columns) for row in rows]
    with atomic_write(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def plot_accuracy_vs_resolution(rows: list[dict], trained: int, path: Path, title: str = "") -> Path | None:
    """PNG of test accuracy against input resolution (None if matplotlib is missing)."""
    return plot_metric_against(rows, "resolution", "accuracy", path, trained=trained,
                               xlabel="input resolution (pixels per side)", ylabel="test accuracy (%)",
                               percent=True, title=title)


def plot_metric_against(rows: list[dict], x: str, y: str, path: Path, *, trained, xlabel: str, ylabel: str,
                        percent: bool = False, title: str = "", log2_x: bool = False) -> Path | None:
    """PNG of ``row[y]`` (times 100 with ``percent``) against ``row[x]``, a dashed line at ``x = trained``; the
    checkpoint path ``title`` shortened to its last parts. None (and a note) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plot written")
        return None
    ordered = sorted(rows, key=lambda r: r[x])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r[x] for r in ordered], [(100 if percent else 1) * r[y] for r in ordered], marker="o")
    ax.axvline(trained, color="grey", linestyle="--", linewidth=1, label=f"trained at {trained}")
    if log2_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks([r[x] for r in ordered], [str(r[x]) for r in ordered])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title("/".join(Path(title).parts[-4:]), fontsize=8)  # e.g. <run>/finetune/checkpoints/best.pt
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
    return path
