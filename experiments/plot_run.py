"""Draw what a trained network learned (kernels, masks, kernel sizes) from its checkpoint alone.

    python experiments/plot_run.py outputs/<date>/<time>                 # -> outputs/<date>/<time>/figures/
    python experiments/plot_run.py <run>/checkpoints/last.pt --out figs  # one checkpoint, into figs/

A run directory uses ``checkpoints/best.pt`` (else ``last.pt``; cross-resolution runs:
``finetune/checkpoints/`` then ``source/checkpoints/``) and the run's ``metrics.jsonl`` for the kernel
sizes over training. A checkpoint file draws into ``<its folder>/<its name>_figures/`` unless ``--out`` is
given; it gets the curve too when it lies inside a run directory. docs/FIGURES.md explains the figures.
Exit code 1 with one message for a path that is neither, or a checkpoint that cannot be used.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the project root on the path

from config import run_spec, with_defaults  # noqa: E402
from config.read import read_stored_model_spec  # noqa: E402
from engine.build import input_meta  # noqa: E402
from engine.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from engine.figures import SIZES_OVER_TRAINING, draw_kernel_size_curve, draw_model_figures, layer_names  # noqa: E402
from engine.stored import stored_phase  # noqa: E402
from models import build_model  # noqa: E402

# Where a run directory keeps its checkpoints, most wanted first (run_crossres.py: one folder per phase).
CHECKPOINT_DIRS = ("checkpoints", "finetune/checkpoints", "source/checkpoints", ".")
CHECKPOINT_NAMES = ("best.pt", "last.pt")
PHASES = ("source", "finetune")


class PlotError(RuntimeError):
    """A path or checkpoint this script cannot draw from (reported as one line, exit code 1)."""


def find_checkpoint(run_dir: Path) -> Path:
    for folder in CHECKPOINT_DIRS:
        for name in CHECKPOINT_NAMES:
            if (run_dir / folder / name).is_file():
                return run_dir / folder / name
    raise PlotError(f"no checkpoint in {str(run_dir)!r}: looked for best.pt / last.pt in "
                    f"{', '.join(CHECKPOINT_DIRS)}")


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory of a checkpoint in ``<run>/checkpoints/`` or ``<run>/<phase>/checkpoints/``, if any."""
    folder = checkpoint.resolve().parent
    if folder.name != "checkpoints":
        return None  # a copied checkpoint: a metrics.jsonl near it may belong to another run
    run_dir = folder.parent
    if not (run_dir / "metrics.jsonl").is_file() and run_dir.name in PHASES:
        run_dir = run_dir.parent
    return run_dir if (run_dir / "metrics.jsonl").is_file() else None


def stored_meta(checkpoint: dict):
    """The data the checkpoint's model was trained on (read from its stored config, without validation): for a
    ``run_crossres.py`` checkpoint that of its phase (``engine.stored.stored_phase``), else the config's
    ``cross_res.resize`` or the dataset's native size."""
    spec = stored_phase(run_spec(with_defaults(checkpoint["config"])), checkpoint)
    return input_meta(spec)


def rebuild_model(checkpoint: dict, source: Path):
    """The checkpoint's model with its weights, and the input shape ``(C, L)`` / ``(C, H, W)`` it was trained on.

    The model is built from the checkpoint's stored model spec (``model_spec``; checkpoints of the earlier format
    have none, and their model is read from the stored config: ``config.read.read_stored_model_spec``)."""
    try:
        meta = stored_meta(checkpoint)
        model = build_model(read_stored_model_spec(checkpoint), meta.data_dim, meta.in_channels, meta.num_classes)
        model.load_state_dict(checkpoint["model"])
    except (KeyError, AttributeError, TypeError, ValueError, RuntimeError) as error:  # ConfigError is a ValueError
        message = str(error).splitlines()[0] if str(error) else ""
        raise PlotError(f"could not rebuild the model of {str(source)!r} from its stored model spec and config "
                        f"({type(error).__name__}: {message})") from None
    return model.eval(), tuple(meta.input_shape)


def plot(path: Path, out: Path | None) -> list[Path]:
    """Draw the figures of a run directory or checkpoint file; returns the files written."""
    if path.is_dir():
        checkpoint_path = find_checkpoint(path)
        run_dir = run_dir_of(checkpoint_path) or path
        out = out or path / "figures"
    elif path.is_file():
        checkpoint_path, run_dir = path, run_dir_of(path)
        out = out or path.parent / f"{path.stem}_figures"
    else:
        raise PlotError(f"{str(path)!r} is neither a run directory nor a checkpoint file")
    model, input_shape = rebuild_model(load_checkpoint(checkpoint_path), checkpoint_path)
    print(f"drawing {checkpoint_path} -> {out}")
    written = draw_model_figures(model, out, input_shape=input_shape)
    if run_dir is not None:
        curve = draw_kernel_size_curve(run_dir / "metrics.jsonl", out / SIZES_OVER_TRAINING, layer_names(model))
        written += [curve] if curve is not None else []
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="run directory or checkpoint file (.pt)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <run dir>/figures or <checkpoint dir>/<name>_figures)")
    args = parser.parse_args(argv)
    try:
        written = plot(args.path, args.out)
    except (PlotError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. an output folder that cannot be created
        print(f"error: could not write the figures: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  {path}")
    if not written:
        print("nothing to draw: the model has no FlexConv, CKConv or SRF layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
