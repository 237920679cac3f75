"""The run spec of a stored checkpoint, for evaluating it (``train.do=False``, ``cross_res.eval_resolutions``)
or drawing it (``experiments/plot_run.py``)."""
from __future__ import annotations

from typing import Mapping

from .checkpoint import LEGACY_FORMAT
from .crossres import phase_data
from .lifecycle import SpecSource
from .specs import RunSpec


def checkpoint_spec(source: SpecSource, checkpoint: Mapping) -> RunSpec:
    """The checkpoint's stored config read with this command's keys on top, its model from the stored model spec.

    A checkpoint of a ``run_crossres.py`` phase stores the run's config and its phase: its data is that phase's
    (resolution, ...). Checkpoints of the earlier format stored the phase's config itself.
    """
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
