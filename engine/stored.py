"""The run spec of a stored checkpoint, for evaluating it (``train.do=False``, ``cross_res.eval_resolutions``,
``test.sampling_rates``) or drawing it (``experiments/plot_run.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from .build import checkpoint_weights, input_meta, load_weights, pretrained_file
from .checkpoint import LEGACY_FORMAT, load_checkpoint
from .crossres import phase_data, phase_spec
from .lifecycle import Run, SpecSource
from .original import ORIGINAL_FORMAT, original_data_state, original_grids
from .specs import RunSpec


def checkpoint_spec(source: SpecSource, checkpoint: Mapping) -> RunSpec:
    """The checkpoint's stored config read with this command's keys on top, its model from the stored model spec.

    A checkpoint of a ``run_crossres.py`` phase stores the run's config and its phase: its data is that phase's
    (resolution, ...). Checkpoints of the earlier format stored the phase's config itself. A checkpoint of the
    original code stores no config: the command describes it (:func:`original_spec`).
    """
    if checkpoint.get("format") == ORIGINAL_FORMAT:
        return original_spec(source.spec, checkpoint["model"])
    return stored_phase(source.with_stored(checkpoint["config"], checkpoint.get("model_spec")), checkpoint)


def stored_phase(spec: RunSpec, checkpoint: Mapping) -> RunSpec:
    """``spec`` (read from the checkpoint's stored config) with the data of the checkpoint's cross-resolution phase,
    where it has one: a ``run_crossres.py`` checkpoint of this format stores the run's config and ``crossres.phase``;
    one of the earlier format (``LEGACY_FORMAT``) stored the phase's config itself, and any other checkpoint is
    its run's."""
    state = checkpoint.get("crossres")
    if isinstance(state, Mapping) and checkpoint.get("format") != LEGACY_FORMAT:
        return phase_data(spec, state["phase"])
    return spec


def original_phase(spec: RunSpec, weights: Mapping) -> Optional[str]:
    """The cross-resolution phase an original checkpoint comes from, read from its kernel grid: with
    ``cross_res.source_res`` / ``target_res`` set, a grid of ``source_res + 1`` taps is the source phase's file and
    one of ``target_res + 1`` the final (fine-tuned) one. None for any other config or file (networks without
    kernel grids - Conv, N-Jet, ResNets - say nothing about their resolution)."""
    cross = spec.cross_res
    grids = original_grids(weights)
    if not (cross.source_res and cross.target_res) or len(grids) != 1:
        return None
    return {cross.source_res + 1: "source", cross.target_res + 1: "finetune"}.get(next(iter(grids)))


def original_spec(spec: RunSpec, weights: Mapping) -> RunSpec:
    """The spec of an original checkpoint, which stores no config: the command's, moved to the file's
    cross-resolution phase where it has one (:func:`original_phase`): the phase's data (resolution), and - unless
    ``conv.horizon`` already is the file's grid, as in the original's own record of that phase (``conv.horizon=33
    kernel.sampling_rate_norm=0.25``) - the phase's model as ``run_crossres.py`` builds it: ``conv.horizon =
    resolution + 1`` and, for the target phase, the kernel scale ``kernel.sampling_rate_norm * (source /
    target)^2``. That scale is not in the file: it always comes from the configuration."""
    phase = original_phase(spec, weights)
    if phase is None:
        return spec
    grid = next(iter(original_grids(weights)))
    if str(spec.model.conv.horizon) == str(grid):
        return phase_data(spec, phase)
    return phase_spec(spec, phase)


def checkpoint_data_state(spec: RunSpec, checkpoint: Mapping) -> Optional[dict]:
    """The data state to evaluate ``checkpoint`` with (pMNIST permutation, npCIFAR10 noise): its stored one, for an
    original checkpoint the one its run had where that can be recreated; None: drawn from the seed."""
    if checkpoint.get("format") == ORIGINAL_FORMAT:
        return original_data_state(spec.data.permuted, spec.runtime.seed) or None
    return checkpoint.get("data_state") or None


@dataclass
class EvaluatedCheckpoint:
    """A checkpoint opened for evaluation: its file, its spec, and the model rebuilt from it with its weights."""

    path: str
    checkpoint: dict
    spec: RunSpec
    model: torch.nn.Module
    weights: dict  # the state dict loaded into the model (an original checkpoint's mapped once)

    def reload(self) -> None:
        """The checkpoint's weights (and kernel grids) back into the model."""
        load_weights(self.model, self.weights, self.spec.runtime.pretrained_strict, self.path)

    @property
    def data_state(self) -> Optional[dict]:
        return checkpoint_data_state(self.spec, self.checkpoint)


def open_for_evaluation(source: SpecSource, run: Run) -> EvaluatedCheckpoint:
    """The checkpoint of ``pretrained=True`` / ``pretrained_wandb=True`` (this project's or the original code's), its
    spec seeded by ``run`` and its model built and loaded (strictly unless ``pretrained_strict=False``)."""
    path = pretrained_file(source.spec, run.run_dir)
    checkpoint = load_checkpoint(path, original=True)
    spec = run.seed(checkpoint_spec(source, checkpoint))
    model = run.model(spec, input_meta(spec))
    weights = checkpoint_weights(model, checkpoint, spec.runtime.pretrained_strict, path)
    opened = EvaluatedCheckpoint(path, checkpoint, spec, model, weights)
    opened.reload()
    return opened
