"""The one reading of a run's config: the composed Hydra config -> validated, parsed :class:`engine.specs.RunSpec`.

    reader = SpecReader(cfg, entry="run_experiment", explicit=explicit_keys(overrides))   # validates once
    reader.spec                     # the command's run spec
    reader.with_stored(stored)      # a resumed or evaluated checkpoint's config, with this command's keys on top

Nothing below the entry points reads a DictConfig but this module: every multi-spelling value (``""`` /
``none`` schedulers, ``"None"`` bias inits, ``"16,16"`` resizes, ``true``/``auto``/path resumes) is parsed here,
once, into plain typed values.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from ckconv.nn.functional import parse_use_fft
from datasets import DataSpec
from engine.specs import (AntiAliasingSpec, CrossResSpec, LoopSpec, LossSpec, OptimSpec, ProfileSpec, RunSpec,
                          RuntimeSpec, WandbFileSpec, WandbSpec)
from models import ConvSpec, KernelSpec, MaskSpec, ModelSpec, NetSpec

from . import choices as C
from .errors import ConfigError
from .schema import schema_keys, with_defaults
from .validation import config_warnings, evaluates_checkpoint, sequence_options, validate_config

# Keys that describe how to run, not what was trained: taken from the current command, never from a
# stored checkpoint config (a checkpoint made on a GPU must evaluate on a laptop).
RUNTIME_KEYS = ("device", "train.do", "train.resume", "pretrained", "pretrained_params", "pretrained_strict",
                "pretrained_wandb", "pretrained_wandb_params",
                "wandb", "debug", "dataset_params.root", "dataset_params.num_workers", "dataset_params.in_ram",
                "dataset_params.from_cache", "comment",
                "cross_res.eval_resolutions", "test.sampling_rates")


class SpecReader:
    """One command's config, read into run specs. Construction validates it (a :class:`ConfigError` lists every
    bad value) and prints a note for each key that has no effect."""

    def __init__(self, cfg: DictConfig, *, entry: str = "run_experiment", explicit: Sequence[str] = ()):
        self.entry, self.explicit = entry, tuple(explicit)
        self._cfg = cfg
        self._notes: set[str] = set()
        # A checkpoint evaluation's data options are checked against the checkpoint's dataset (in with_stored).
        self.spec = self._read(cfg, checkpoint_follows=evaluates_checkpoint(cfg, entry))

    def with_stored(self, config: Mapping[str, Any], model_spec: Optional[Mapping[str, Any]] = None) -> RunSpec:
        """The spec of a checkpoint: its stored config, with the keys this command sets explicitly and the runtime
        keys (:data:`RUNTIME_KEYS`) taken from the command, validated like the command's own. With the
        checkpoint's ``model_spec`` the model is that spec, with the model keys this command sets on top."""
        spec = self._read(merge_stored(config, self._cfg, self.explicit))
        if model_spec is None:
            return spec
        return dataclasses.replace(spec, model=with_explicit(ModelSpec.from_dict(model_spec), spec.model,
                                                             self.explicit))

    def _read(self, cfg: DictConfig, checkpoint_follows: bool = False) -> RunSpec:
        validate_config(cfg, entry=self.entry, checkpoint_follows=checkpoint_follows)
        for note in config_warnings(cfg, self.entry):
            if note not in self._notes:
                print(f"note: {note}")
                self._notes.add(note)
        return run_spec(cfg)


def merge_stored(stored: Mapping[str, Any], current: DictConfig, explicit: Sequence[str]) -> DictConfig:
    """The stored config (keys it lacks keep the command's values), with the keys set explicitly on this command
    line and the runtime keys taken from the current config."""
    base = copy.deepcopy(current)
    for info in schema_keys():  # free-form mappings (paper.published) take whatever entries the stored config has
        node = OmegaConf.select(base, info.path) if info.kind == "dict" else None
        if isinstance(node, DictConfig):
            OmegaConf.set_struct(node, False)
    try:
        cfg = OmegaConf.merge(base, stored)
    except Exception as error:  # omegaconf's errors name the key
        raise ConfigError(f"the checkpoint's stored config does not fit this version's schema: "
                          f"{str(error).splitlines()[0]}") from None
    for key in list(RUNTIME_KEYS) + list(explicit):
        value = OmegaConf.select(current, key)
        if value is not None or OmegaConf.select(cfg, key) is not None:
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def with_explicit(stored: ModelSpec, command: ModelSpec, explicit: Sequence[str]) -> ModelSpec:
    """``stored`` with the fields whose config keys were set on the command line (``explicit``) from ``command``."""
    sections = {}
    for section in dataclasses.fields(ModelSpec):
        stored_part, command_part = getattr(stored, section.name), getattr(command, section.name)
        changes = {f.name: getattr(command_part, f.name) for f in dataclasses.fields(stored_part)
                   if MODEL_KEYS.get((section.name, f.name), f"{section.name}.{f.name}") in explicit}
        sections[section.name] = dataclasses.replace(stored_part, **changes)
    return ModelSpec(**sections)


# Model spec fields whose config key is not "<section>.<field>".
MODEL_KEYS = {("kernel", "srf_scale"): "kernel.srf.scale"}


# --- DictConfig -> specs ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _horizon(value: Any) -> Any:
    """``conv.horizon``: "33" from YAML or the command line means 33; keywords stay strings."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def model_spec(cfg: Any) -> ModelSpec:
    """The model part of a (complete) config; ``cfg`` may also be a stored config as a plain dict."""
    cfg = with_defaults(cfg)
    net, conv, kernel, mask = cfg.net, cfg.conv, cfg.kernel, cfg.mask
    return ModelSpec(
        net=NetSpec(type=net.type, no_hidden=net.no_hidden, no_blocks=net.no_blocks, dropout=net.dropout,
                    norm=net.norm, nonlinearity=net.nonlinearity,
                    block_width_factors=tuple(_plain(net.block_width_factors))),
        conv=ConvSpec(type=conv.type, horizon=_horizon(conv.horizon), use_fft=parse_use_fft(conv.use_fft),
                      bias=conv.bias, padding=conv.padding, stride=conv.stride),
        kernel=KernelSpec(type=kernel.type, no_hidden=kernel.no_hidden, no_layers=kernel.no_layers,
                          activ_function=kernel.activ_function, norm=kernel.norm, omega_0=kernel.omega_0,
                          learn_omega_0=kernel.learn_omega_0, weight_norm=kernel.weight_norm,
                          steerable=kernel.steerable, init_spatial_value=kernel.init_spatial_value,
                          bias_init=C.parse_bias_init(kernel.bias_init), input_scale=kernel.input_scale,
                          sampling_rate_norm=kernel.sampling_rate_norm, srf_scale=kernel.srf.scale),
        mask=MaskSpec(use=mask.use, type=mask.type, init_value=mask.init_value,
                      dynamic_cropping=mask.dynamic_cropping, threshold=mask.threshold),
    )


def data_spec(cfg: Any) -> DataSpec:
    cfg = with_defaults(cfg)
    params, workers = cfg.dataset_params, cfg.dataset_params.num_workers
    return DataSpec(name=cfg.dataset, root=params.root or None, batch_size=cfg.train.batch_size,
                    augment=C.parse_augment(cfg.train.augment), protocol=cfg.protocol,
                    val_fraction=params.val_fraction, seed=cfg.seed, num_workers=None if workers < 0 else workers,
                    permuted=params.permuted, noise_padded=params.noise_padded,
                    resolution=C.parse_resize(cfg.cross_res.resize), interpolation=cfg.cross_res.interpolation,
                    synthetic=params.synthetic, in_ram=params.in_ram, from_cache=params.from_cache,
                    **sequence_options(cfg))


def _milestones(value: Any) -> tuple[int, ...]:
    value = _plain(value)
    if isinstance(value, int):
        return () if value < 0 else (value,)
    return tuple(int(step) for step in value)


def run_spec(cfg: DictConfig) -> RunSpec:
    """Every part of a validated config, parsed (see :mod:`engine.specs` for what each part is)."""
    train, kernel = cfg.train, cfg.kernel
    reg = kernel.regularize_params
    opt_params, sched = train.optimizer_params, train.scheduler_params
    return RunSpec(
        model=model_spec(cfg),
        data=data_spec(cfg),
        optim=OptimSpec(optimizer=train.optimizer, lr=train.lr, mask_params_lr_factor=train.mask_params_lr_factor,
                        omega_0_lr_factor=train.omega_0_lr_factor, momentum=opt_params.momentum,
                        nesterov=opt_params.nesterov, weight_decay=opt_params.weight_decay,
                        scheduler=C.parse_scheduler(train.scheduler), decay_steps=_milestones(sched.decay_steps),
                        decay_factor=sched.decay_factor, patience=sched.patience, warmup_epochs=sched.warmup_epochs,
                        grad_clip=train.grad_clip),
        loss=LossSpec(kernel_norm=train.weight_decay, anti_aliasing=AntiAliasingSpec(
            res=reg.res, res_offset=reg.res_offset, target=reg.target, fn=reg.fn, method=reg.method,
            factor=reg.factor, gauss_stddevs=reg.gauss_stddevs) if kernel.regularize else None),
        loop=LoopSpec(train=train.do, epochs=train.epochs, early_stop_patience=train.early_stop_patience,
                      limit_train_batches=train.limit_train_batches, limit_eval_batches=train.limit_eval_batches,
                      report_top5=train.report_top5_acc, log_every=train.log_every, plot_every=train.plot_every,
                      dropout_in=cfg.net.dropout_in, test_before_train=cfg.test.before_train,
                      test_sampling_rates=tuple(_plain(cfg.test.sampling_rates))),
        runtime=RuntimeSpec(device=cfg.device, seed=cfg.seed, deterministic=cfg.deterministic,
                            mixed_precision=train.mixed_precision, compile=C.parse_compile(train.compile),
                            channels_last=train.channels_last, resume=C.parse_resume(train.resume),
                            pretrained=cfg.pretrained_params.filepath if cfg.pretrained else None,
                            pretrained_wandb=WandbFileSpec(run_path=cfg.pretrained_wandb_params.run_path,
                                                           filename=cfg.pretrained_wandb_params.filename)
                            if cfg.pretrained_wandb else None,
                            pretrained_strict=cfg.pretrained_strict,
                            summary_depth=cfg.summary_depth if len(cfg.summary) > 1 else None,
                            wandb=WandbSpec(project=cfg.wandb.project, entity=cfg.wandb.entity or None,
                                            dir=cfg.wandb.dir, mode=cfg.wandb.mode, debug=cfg.debug)),
        cross_res=CrossResSpec(source_res=cfg.cross_res.source_res, target_res=cfg.cross_res.target_res,
                               finetune_epochs=cfg.cross_res.finetune_epochs,
                               eval_resolutions=tuple(_plain(cfg.cross_res.eval_resolutions))),
        profile=ProfileSpec(**_plain(cfg.profile)),
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def read_command(overrides: Sequence[str] = (), *, entry: str = "run_experiment") -> SpecReader:
    """Compose ``cfg/config.yaml`` with command-line style ``overrides`` and read it, as the entry points do
    (for tests, notebooks and tools; not inside a running ``@hydra.main`` app)."""
    from .cli import compose_config, explicit_keys

    return SpecReader(compose_config(overrides), entry=entry, explicit=explicit_keys(overrides))


def read_stored_model_spec(checkpoint: Mapping[str, Any]) -> Optional[ModelSpec]:
    """The model spec of a checkpoint: stored as such (this version), else read from its stored config (older
    checkpoints of this project); None when it has neither."""
    if "model_spec" in checkpoint:
        return ModelSpec.from_dict(checkpoint["model_spec"])
    if "config" in checkpoint:
        return model_spec(checkpoint["config"])
    return None
