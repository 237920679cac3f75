"""Convert a checkpoint of the original FlexConv code into this project's checkpoint format, once.

    python experiments/convert_original.py ORIGINAL.pt experiment=t3_cifar10_flexnet7 -o OURS.pt
    python experiments/convert_original.py ORIGINAL.pt python run_experiment.py conv.horizon=33 ... seed=2 -o OURS.pt
    python experiments/convert_original.py ORIGINAL.pt experiment=t3_cifar10_flexnet7 -o OURS.pt \\
        --inputs x.pt --outputs logits.pt

The original's file holds weights only, so the configuration it was trained with is given as the user ran it: a
preset, ``key=value`` flags, or the original command itself, verbatim (``python run_crossres.py ... device=cuda``
included: the device is not used here). A configuration with ``cross_res.source_res`` / ``target_res`` (or the
command of ``run_crossres.py``) describes a cross-resolution run: the file's kernel grid tells whether it is the
source or the final checkpoint, and the kernel scale of the final phase (``kernel.sampling_rate_norm``, not in
the file) comes from the configuration.

The result (format ``flexconv-checkpoint-v2``: weights, model spec, config, data state) evaluates, plots, and
serves cross-resolution evaluation and fine-tuning without further flags. It counts as a finished run (the
original saved its best weights, not a state to continue from, and its Adam state cannot be matched to
parameters): ``train.resume`` on it evaluates it; train on from it with ``pretrained=True``.
``--inputs X.pt --outputs Y.pt`` runs the converted model in eval mode on a saved input tensor ``[B, C, ...]`` (or
one sample ``[C, ...]``) and saves the output tensor, to compare with the original code on the same inputs.
Exit code 1 with one message when the file or the configuration does not fit.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the project root on the path

import torch  # noqa: E402

from config import ConfigError, SpecReader, compose_config, explicit_keys  # noqa: E402
from datasets import DatasetMeta  # noqa: E402
from datasets.paths import DatasetNotAvailableError, atomic_write  # noqa: E402
from engine.build import build_run_model, checkpoint_weights, input_meta, load_weights  # noqa: E402
from engine.checkpoint import CheckpointError, CrossResState, load_checkpoint, save_checkpoint  # noqa: E402
from engine.crossres import uses_kernel_grid  # noqa: E402
from engine.optim import build_optimizer, build_schedule  # noqa: E402
from engine.original import ORIGINAL_FORMAT, describe_original, original_data_state, original_grids  # noqa: E402
from engine.stored import original_phase, original_spec  # noqa: E402
from models import count_parameters  # noqa: E402

ENTRIES = {"run_experiment.py": "run_experiment", "run_crossres.py": "run_crossres"}


class ConvertError(RuntimeError):
    """An input this script cannot use (reported as one line, exit code 1)."""


def read_configuration(arguments: list[str]) -> SpecReader:
    """The run's configuration from a preset / ``key=value`` flags / the original command verbatim (``python`` and
    the script name are dropped; ``run_crossres.py`` selects its checks, as does a config that sets both
    cross-resolution resolutions)."""
    entry, overrides = None, []
    for token in arguments:
        name = Path(token).name
        if token in ("python", "python3"):
            continue
        if name.endswith(".py"):
            if name not in ENTRIES:
                raise ConvertError(f"{token!r}: the original commands run {' or '.join(ENTRIES)}")
            entry = ENTRIES[name]
            continue
        overrides.append(token)
    try:
        cfg = compose_config(overrides)
    except ConfigError:
        raise
    except Exception as error:  # Hydra's composition errors (a value of the wrong type, ...)
        raise ConvertError(f"the configuration does not compose: {str(error).splitlines()[0]}") from None
    if entry is None:
        entry = "run_crossres" if cfg.cross_res.source_res and cfg.cross_res.target_res else "run_experiment"
    return SpecReader(cfg, entry=entry, explicit=explicit_keys(overrides))


def model_meta(spec, weights) -> DatasetMeta:
    """The input shape and classes the model is built for. A dataset that counts its classes from its files
    (``Imagenet-k``) needs no files here: without them, the file's readout gives the count."""
    try:
        return input_meta(spec)
    except DatasetNotAvailableError:
        meta = input_meta(dataclasses.replace(spec, data=dataclasses.replace(spec.data, synthetic=True)))
        classes = describe_original(weights).get("classes", meta.num_classes)
        print(f"note: {spec.data.name} is not under dataset_params.root here: its class count is taken from the "
              f"file's readout ({classes} classes)")
        return dataclasses.replace(meta, num_classes=classes)


def convert(original_path: Path, reader: SpecReader, output: Path) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """Map the original checkpoint onto the configured model and write it in this project's format; returns the
    model (weights loaded, eval mode) and its input shape."""
    checkpoint = load_checkpoint(original_path, original=True)
    if checkpoint.get("format") != ORIGINAL_FORMAT:
        raise ConvertError(f"{str(original_path)!r} is already a checkpoint of this project (format "
                           f"{checkpoint.get('format')!r}); nothing to convert")
    weights = checkpoint["model"]
    run_spec = reader.spec
    spec = original_spec(run_spec, weights)
    phase = original_phase(run_spec, weights)
    meta = model_meta(spec, weights)
    model = build_run_model(spec, meta)
    strict = spec.runtime.pretrained_strict
    load_weights(model, checkpoint_weights(model, checkpoint, strict, str(original_path)), strict, str(original_path))
    model.eval()

    optimizer = build_optimizer(model, spec.optim)  # fresh: the original's Adam state cannot be matched
    schedule = build_schedule(optimizer, spec.optim, spec.loop.epochs, steps_per_epoch=1)
    original_epoch = checkpoint.get("epoch")
    # The best-epoch record (engine.trainer.BestState) of a finished run, under a classifier's names (every paper
    # model is one): no epoch ran here, so there is no validation value; its epoch is the original's best epoch.
    best = {"val_accuracy": None, "val_loss": math.inf, "epochs_since_best": 0, "test_accuracy": None,
            "best_test_accuracy": None,
            "epoch": int(original_epoch) if isinstance(original_epoch, int) else spec.loop.epochs}
    data_state = original_data_state(spec.data.permuted, spec.runtime.seed)
    state = {"model": model.state_dict(), "model_spec": spec.model.to_dict(), "config": dict(run_spec.config),
             "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": spec.loop.epochs,
             "global_step": 0, "best": best, "data_state": data_state, "wandb_id": None, "elapsed_s": 0.0,
             "converted_from": {"path": str(original_path), "code": "original FlexConv", "epoch": original_epoch}}
    if phase is not None:
        state["crossres"] = dataclasses.asdict(CrossResState(phase=phase, config=dict(run_spec.config)))
    save_checkpoint(state, output)

    print(f"converted {original_path} (original FlexConv checkpoint, epoch {original_epoch}) -> {output}")
    print(f"  {spec.model.net.type} / {spec.model.conv.type} for {meta.name} {tuple(meta.input_shape)}: "
          f"{count_parameters(model):,} parameters")
    if uses_kernel_grid(spec):
        grids = sorted(original_grids(weights))
        print(f"  kernel grid {grids[0] if len(grids) == 1 else grids} taps; kernel.sampling_rate_norm="
              f"{spec.model.kernel.sampling_rate_norm:g} from the configuration (the original's file does not store "
              f"it: a cross-resolution final checkpoint needs the value of its target phase, 0.25 for 16 -> 32)")
    if phase is not None:
        resolution = run_spec.cross_res.source_res if phase == "source" else run_spec.cross_res.target_res
        print(f"  cross-resolution {'source' if phase == 'source' else 'final (fine-tuned)'} checkpoint: "
              f"evaluated at {resolution}x{resolution}")
    if data_state:
        print(f"  pMNIST permutation recreated as the original drew it (numpy, seed={spec.runtime.seed})")
    if spec.data.noise_padded:
        print("  note: the original's noise-padded CIFAR-10 noise is not in its checkpoint and cannot be recreated; "
              "evaluation here uses this project's noise for the seed, so accuracies differ from the original's")
    print(f"  evaluate: python run_experiment.py train.do=False pretrained=True pretrained_params.filepath={output}")
    return model, tuple(meta.input_shape)


def run_inputs(model: torch.nn.Module, inputs: Path, outputs: Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """The converted model's output (eval mode) on the tensor saved in ``inputs``, saved to ``outputs``."""
    try:
        x = torch.load(inputs, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConvertError(f"--inputs {str(inputs)!r} could not be read as a saved tensor "
                           f"({type(error).__name__})") from None
    if not isinstance(x, torch.Tensor):
        raise ConvertError(f"--inputs {str(inputs)!r} holds a {type(x).__name__}, not a tensor")
    if tuple(x.shape) == tuple(input_shape):
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ConvertError(f"--inputs {str(inputs)!r} has shape {tuple(x.shape)}; the model takes [B, "
                           f"{', '.join(map(str, input_shape))}]")
    with torch.no_grad():
        y = model(x.float())
    with atomic_write(outputs) as handle:
        torch.save(y, handle)
    print(f"  outputs of {tuple(x.shape)} inputs: {tuple(y.shape)} -> {outputs}")
    return y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("original", type=Path, help="checkpoint written by the original FlexConv code (.pt)")
    parser.add_argument("config", nargs="*", help="preset (experiment=...), key=value flags, or the original command")
    parser.add_argument("-o", "--output", type=Path, required=True, help="converted checkpoint to write (.pt)")
    parser.add_argument("--inputs", type=Path, help="saved input tensor to run the converted model on")
    parser.add_argument("--outputs", type=Path, help="where to save its output tensor (with --inputs)")
    args = parser.parse_intermixed_args(argv)
    if (args.inputs is None) != (args.outputs is None):
        parser.error("--inputs and --outputs go together")
    try:
        reader = read_configuration(args.config)
        model, input_shape = convert(args.original, reader, args.output)
        if args.inputs is not None:
            run_inputs(model, args.inputs, args.outputs, input_shape)
    except (ConvertError, ConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
