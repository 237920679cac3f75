"""Value checks the schema's types cannot express, and notes on keys that are accepted but have no effect.

:func:`validate_config` collects every problem and raises one :class:`ConfigError` listing them, each naming
the key, the bad value and the allowed values. Keys with an allowed-value list in the schema are checked from
that list; the rest are ranges and cross-key rules. The layer arguments and per-dataset options are checked by
the code that implements them (``ckconv``, ``datasets``), called here, so the rules exist once.
"""
from __future__ import annotations

import difflib
from dataclasses import is_dataclass
from typing import Any, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from ckconv.nn.kernelnets import MFN_SPATIAL_TYPES, SIREN_TYPES
from models.layers import CK_NET_TYPES, CONTINUOUS_CONV_TYPES, CONV_TYPES, MASKED_CONV_TYPES

from . import choices as C
from .errors import ConfigError
from .schema import OVERWRITTEN, REJECTED, UNUSED, iter_values


def _is_int(value: Any) -> bool:
    # bool is a subclass of int; "conv.horizon=True" must not pass as horizon 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, (ListConfig, DictConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


class Problems:
    """Collects every problem, so one run reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: Any, expected: str) -> None:
        self.items.append(f"{key}={value!r} is invalid: {expected}")

    def choice(self, key: str, value: Any, allowed: Sequence[Any]) -> None:
        if value not in allowed:
            # Compare case-insensitively: "adam" -> "Adam", "flex" -> "FlexConv".
            by_lower = {str(a).lower(): str(a) for a in allowed if a}
            hint = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.5)
            extra = f" (did you mean '{by_lower[hint[0]]}'?)" if hint else ""
            self.add(key, value, f"allowed values are {C.format_allowed(allowed)}{extra}")

    def at_least(self, key: str, value: Any, low: float, *, or_minus_one: bool = False) -> None:
        if or_minus_one and value == -1:
            return
        if not _is_number(value) or value < low:
            self.add(key, value, f"must be >= {low}" + (" (or -1)" if or_minus_one else ""))

    def fraction(self, key: str, value: Any, *, closed_low: bool = True) -> None:
        ok = _is_number(value) and (value >= 0 if closed_low else value > 0) and value < 1
        if not ok:
            self.add(key, value, f"must satisfy {'0 <=' if closed_low else '0 <'} value < 1")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(self.items))


def as_config(cfg: Any) -> DictConfig:
    if isinstance(cfg, DictConfig):
        return cfg
    return OmegaConf.structured(cfg) if is_dataclass(cfg) else OmegaConf.create(cfg)


# --- the checks --------------------------------------------------------------------------------------
def _check_allowed_values(cfg: DictConfig, err: Problems) -> None:
    """Every key with an allowed-value list, and every rejected key (only its default is allowed)."""
    for info, value in iter_values(cfg):
        if info.status == REJECTED and value != info.default:
            err.add(info.path, value, info.doc)
        if info.allowed is None:
            continue
        allowed = info.allowed() if callable(info.allowed) else info.allowed
        err.choice(info.path, info.parse(value) if info.parse else value, allowed)


def _check_block_width_factors(cfg: DictConfig, err: Problems) -> None:
    from models.widths import block_factors  # the width schedule's own rule

    try:
        block_factors(_plain(cfg.net.block_width_factors), int(cfg.net.no_blocks))
    except ValueError as error:
        err.add("net.block_width_factors", _plain(cfg.net.block_width_factors), str(error))


DATASET_OPTION_KEYS = {"augment": "train.augment", "permuted": "dataset_params.permuted",
                       "noise_padded": "dataset_params.noise_padded", "resolution": "cross_res.resize",
                       "interpolation": "cross_res.interpolation",
                       **{name: f"dataset_params.{name}" for name in
                          ("mfcc", "drop_rate", "sr_train", "sr_test", "seq_length", "memory_size")}}


def sequence_options(cfg: Any) -> dict:
    """``dataset_params.mfcc``, ``drop_rate``, ``sr_train``, ``sr_test``, ``seq_length``, ``memory_size`` of a
    complete config, as the keyword arguments of ``DataSpec`` / ``DatasetSpec.check_options``."""
    params = cfg.dataset_params
    return dict(mfcc=params.mfcc, drop_rate=float(params.drop_rate), sr_train=params.sr_train, sr_test=params.sr_test,
                seq_length=params.seq_length, memory_size=params.memory_size)


def _dataset_error(error: ValueError, dataset: str) -> str:
    """A dataset's message about one of its options, with the option named by its config key."""
    message = str(error)
    for option, config_key in DATASET_OPTION_KEYS.items():
        if message.startswith(option + "="):
            message = config_key + message[len(option):]
    return f"{message} (dataset={dataset})"


def _data_meta(cfg: DictConfig, err: Problems, *, sampling_rates: bool = True):
    """The dataset's shape with these options (reads no files), or None when the options are invalid; with
    ``sampling_rates``, ``test.sampling_rates`` is checked against the dataset too."""
    from datasets import get_dataset_spec, list_datasets

    if cfg.dataset not in list_datasets():
        return None  # reported by the allowed-values check
    spec = get_dataset_spec(cfg.dataset)
    params = cfg.dataset_params
    try:
        resolution = C.parse_resize(cfg.cross_res.resize)
    except ValueError as error:
        err.add("cross_res.resize", cfg.cross_res.resize, str(error))
        resolution = None
    try:
        options = spec.check_options(augment=cfg.train.augment if cfg.train.augment.lower() != "none" else "None",
                                     permuted=params.permuted, noise_padded=params.noise_padded,
                                     resolution=resolution, interpolation=cfg.cross_res.interpolation,
                                     **sequence_options(cfg))
    except ValueError as error:
        # The dataset names its options as its own arguments; say which config keys they are.
        err.items.append(_dataset_error(error, cfg.dataset))
        return None
    if sampling_rates:
        _check_test_sampling_rates(cfg, err, spec, options)
    return spec.meta(options)


def _check_test_sampling_rates(cfg: DictConfig, err: Problems, spec, options) -> None:
    """``test.sampling_rates``: rates the dataset can be tested at (its own rule for ``sr_test``)."""
    from dataclasses import asdict

    rates = _plain(cfg.test.sampling_rates)
    if not rates or any(not _is_int(r) or r < 1 for r in rates):
        return  # none, or reported by validate_config
    kwargs = asdict(options)
    try:
        for rate in rates:
            spec.check_options(**{**kwargs, "sr_test": rate})
    except ValueError as error:
        err.add("test.sampling_rates", rates, _dataset_error(error, cfg.dataset))


def _check_conv(cfg: DictConfig, err: Problems, meta, entry: str) -> None:
    from ckconv.nn.functional import parse_use_fft
    from ckconv.nn.grids import HORIZON_KEYWORDS, parse_horizon

    conv = cfg.conv
    try:
        parse_use_fft(conv.use_fft)
    except ValueError:
        err.add("conv.use_fft", conv.use_fft, "allowed values are true, false, auto")
    err.at_least("conv.stride", conv.stride, 1)
    if cfg.net.type not in CK_NET_TYPES:
        return  # fixed baselines ignore the conv section
    horizon = conv.horizon
    if conv.type == "Conv":
        from models.layers import plain_kernel_size

        try:
            plain_kernel_size(horizon)
        except ValueError:
            err.add("conv.horizon", conv.horizon, "with conv.type=Conv it is the kernel size: an int >= 1")
        return
    if entry == "run_crossres" and conv.type != "SRF":
        return  # run_crossres.py sets the horizon of every phase (resolution + 1)
    data_dim = meta.data_dim if meta is not None else 1
    try:
        parse_horizon(horizon, data_dim)
    except ValueError:
        odd = " odd" if data_dim == 2 else ""
        where = f" ({cfg.dataset} is 2D)" if data_dim == 2 else ""
        err.add("conv.horizon", horizon, f"allowed values are an{odd} int >= {3 if data_dim == 2 else 2}{where}, "
                f"{C.format_allowed(HORIZON_KEYWORDS)}")
    if conv.type == "SRF" and meta is not None and meta.data_dim != 2:
        err.add("conv.type", "SRF", f"N-Jet (SRF) layers are 2D only and {cfg.dataset} is a sequence dataset; "
                f"allowed for sequences: {C.format_allowed(t for t in CONV_TYPES if t != 'SRF')}")


def _check_kernel_and_mask(cfg: DictConfig, err: Problems) -> None:
    conv, kernel, mask = cfg.conv, cfg.kernel, cfg.mask
    if conv.type in CONTINUOUS_CONV_TYPES:
        err.at_least("kernel.no_hidden", kernel.no_hidden, 1)
        err.at_least("kernel.no_layers", kernel.no_layers, 1)
        if kernel.type in SIREN_TYPES and not kernel.omega_0 > 0:
            err.add("kernel.omega_0", kernel.omega_0, f"must be > 0 for kernel.type={kernel.type}")
        if kernel.type in MFN_SPATIAL_TYPES and not kernel.input_scale > 0:
            err.add("kernel.input_scale", kernel.input_scale, "must be > 0")
        if not kernel.sampling_rate_norm > 0:
            err.add("kernel.sampling_rate_norm", kernel.sampling_rate_norm, "must be > 0")
    if conv.type in MASKED_CONV_TYPES:
        if not mask.init_value > 0:
            err.add("mask.init_value", mask.init_value, "must be > 0 (initial Gaussian sigma; paper: 0.075)")
        err.fraction("mask.threshold", mask.threshold, closed_low=False)
    reg = kernel.regularize_params
    err.at_least("kernel.regularize_params.factor", reg.factor, 0)
    err.at_least("kernel.regularize_params.gauss_stddevs", reg.gauss_stddevs, 0)
    if reg.res is not None and reg.res < 1:
        err.add("kernel.regularize_params.res", reg.res, "must be null (derive from the horizon) or an int >= 1")
    if kernel.regularize:
        if conv.type not in MASKED_CONV_TYPES:
            err.add("kernel.regularize", True,
                    f"the anti-aliasing penalty only acts on {C.format_allowed(MASKED_CONV_TYPES)} layers, "
                    f"but conv.type={conv.type}")
        if kernel.type not in MFN_SPATIAL_TYPES:
            err.add("kernel.regularize", True,
                    f"needs kernel.type in {C.format_allowed(MFN_SPATIAL_TYPES)}, got {kernel.type}")


def _check_scheduler(cfg: DictConfig, err: Problems) -> None:
    name, params = C.parse_scheduler(cfg.train.scheduler), cfg.train.scheduler_params
    factor = params.decay_factor
    if name == "multistep":
        steps = _plain(params.decay_steps)
        steps = [steps] if _is_int(steps) else steps
        if not (isinstance(steps, list) and steps and all(_is_int(s) and s >= 1 for s in steps)):
            err.add("train.scheduler_params.decay_steps", _plain(params.decay_steps),
                    "with train.scheduler=multistep it must be a positive int or a list of them (milestone epochs)")
        if factor <= 0:
            err.add("train.scheduler_params.decay_factor", factor, "with multistep it must be > 0 (lr is divided by it)")
    if name == "plateau":
        if factor <= 0:
            err.add("train.scheduler_params.decay_factor", factor, "with plateau it must be > 0 (lr is divided by it)")
        if params.patience < 0:
            err.add("train.scheduler_params.patience", params.patience, "with plateau it must be >= 0 (epochs)")
    if name == "exponential" and not 0 < factor <= 1:
        err.add("train.scheduler_params.decay_factor", factor,
                "with exponential it is the per-epoch multiplier (gamma): 0 < value <= 1")
    err.at_least("train.scheduler_params.warmup_epochs", params.warmup_epochs, 0, or_minus_one=True)
    # A run shorter than its warm-up (a paper command with train.epochs=1 appended) is allowed: it
    # simply ends inside the warm-up.


def _check_train(cfg: DictConfig, err: Problems) -> None:
    train = cfg.train
    if train.do:
        err.at_least("train.epochs", train.epochs, 1)
        if not train.lr > 0:
            err.add("train.lr", train.lr, "must be > 0")
    else:
        err.at_least("train.epochs", train.epochs, 0, or_minus_one=True)
    err.at_least("train.batch_size", train.batch_size, 1)
    for name in ("omega_0_lr_factor", "mask_params_lr_factor", "weight_decay", "grad_clip"):
        err.at_least(f"train.{name}", train[name], 0)
    if train.optimizer == "SGD" and train.optimizer_params.momentum < 0:
        err.add("train.optimizer_params.momentum", train.optimizer_params.momentum, "SGD needs momentum >= 0")
    err.at_least("train.optimizer_params.weight_decay", train.optimizer_params.weight_decay, 0)
    _check_scheduler(cfg, err)
    resume = train.resume
    if isinstance(resume, str) and resume.strip().lower() in ("true", "false"):
        err.add("train.resume", resume, "write true/false unquoted (a quoted string is taken as a path)")
    elif not (isinstance(resume, bool) or (isinstance(resume, str) and resume.strip())):
        err.add("train.resume", resume, "allowed values are false, true (<run dir>/checkpoints/last.pt) or a "
                "checkpoint path")
    err.at_least("train.early_stop_patience", train.early_stop_patience, 1, or_minus_one=True)
    err.at_least("train.limit_train_batches", train.limit_train_batches, 1, or_minus_one=True)
    err.at_least("train.limit_eval_batches", train.limit_eval_batches, 1, or_minus_one=True)
    err.at_least("train.log_every", train.log_every, 1)
    err.at_least("train.plot_every", train.plot_every, 0, or_minus_one=True)


def _check_pretrained_wandb(cfg: DictConfig, err: Problems) -> None:
    if not cfg.pretrained_wandb:
        return
    params = cfg.pretrained_wandb_params
    if cfg.pretrained:
        err.add("pretrained_wandb", True, "weights come from one place: pretrained=True (a local file) or "
                "pretrained_wandb=True (a W&B run's file), not both")
    parts = str(params.run_path or "").split("/")
    if len(parts) != 3 or not all(part.strip() for part in parts):
        err.add("pretrained_wandb_params.run_path", params.run_path, "pretrained_wandb=True needs the W&B run as "
                "entity/project/run_id (e.g. my-team/ckconv_vision/1a2b3c4d)")
    if not params.filename:
        err.add("pretrained_wandb_params.filename", params.filename, "pretrained_wandb=True needs the file of the run "
                "to load (e.g. final_model.pt or checkpoints/best.pt)")


def _check_entry(cfg: DictConfig, err: Problems, entry: str) -> None:
    evaluates = "pretrained=True pretrained_params.filepath=PATH"
    has_weights = bool(cfg.pretrained and cfg.pretrained_params.filepath) or bool(cfg.pretrained_wandb)
    if entry == "run_experiment" and not cfg.train.do and not has_weights:
        err.add("train.do", False, f"evaluating a checkpoint needs {evaluates} "
                f"(e.g. outputs/<run>/checkpoints/best.pt) or pretrained_wandb=True")
    if len(cfg.test.sampling_rates) > 0 and (entry != "run_experiment" or cfg.train.do or not has_weights):
        err.add("test.sampling_rates", _plain(cfg.test.sampling_rates), "evaluates one checkpoint at these test "
                f"sampling rates: run_experiment.py train.do=False {evaluates} (e.g. outputs/<run>/checkpoints/best.pt)")
    if entry == "run_crossres" and len(cfg.cross_res.eval_resolutions) > 0:
        if not has_weights:
            err.add("cross_res.eval_resolutions", _plain(cfg.cross_res.eval_resolutions),
                    f"evaluating a checkpoint at these resolutions needs {evaluates} "
                    f"(e.g. <run>/finetune/checkpoints/best.pt)")
    elif entry == "run_crossres":
        if not cfg.train.do:
            err.add("train.do", False, "run_crossres.py trains; to evaluate a checkpoint at several resolutions pass "
                    f"cross_res.eval_resolutions=[16,24,32] {evaluates}, at one resolution use run_experiment.py "
                    "train.do=False")
        _check_resizable(cfg, err)
        cross = cfg.cross_res
        for name in ("source_res", "target_res"):
            value = cross[name]
            if value < 2 or value % 2:
                err.add(f"cross_res.{name}", value, "must be a positive even resolution (e.g. 16, 32)")
        if cross.source_res == cross.target_res:
            err.add("cross_res.target_res", cross.target_res, "must differ from cross_res.source_res")
        _check_phase_resolutions(cfg, err)
        err.at_least("cross_res.finetune_epochs", cross.finetune_epochs, 1)
    if entry == "run_profiler":
        prof = cfg.profile
        err.at_least("profile.n_batches", prof.n_batches, 1)
        err.at_least("profile.warmup_batches", prof.warmup_batches, 0)
        err.at_least("profile.data_shape", prof.data_shape, 0)


def _check_phase_resolutions(cfg: DictConfig, err: Problems) -> None:
    """Both phases' data exist (Imagenet-k has stored sets at some sizes only): checked before any training."""
    from datasets import DataSpec, list_datasets

    if cfg.dataset not in list_datasets():
        return
    for name in ("source_res", "target_res"):
        value = cfg.cross_res[name]
        try:
            DataSpec(cfg.dataset).at_resolution(value)
        except ValueError as error:
            err.add(f"cross_res.{name}", value, str(error))


def _check_resizable(cfg: DictConfig, err: Problems) -> None:
    from datasets import get_dataset_spec, list_datasets

    if cfg.dataset in list_datasets() and not get_dataset_spec(cfg.dataset).supports_resolution:
        allowed = [name for name in list_datasets() if get_dataset_spec(name).supports_resolution]
        err.add("dataset", cfg.dataset, f"run_crossres.py needs a 2D image dataset that can be resized; allowed: "
                f"{', '.join(allowed)}")


def evaluates_checkpoint(cfg: Any, entry: str) -> bool:
    """``run_experiment.py train.do=False``: the data is the checkpoint's (its stored config, read next with this
    command's keys on top), not the dataset of this command's own config."""
    return entry == "run_experiment" and not as_config(cfg).train.do


def validate_config(cfg: Any, *, entry: str = "run_experiment", checkpoint_follows: bool = False) -> None:
    """Check values the schema's types cannot check; raise :class:`ConfigError` listing them all.

    Args:
        cfg: the composed config (DictConfig, a schema instance or a plain dict with every key).
        entry: the entry point that runs it: ``"run_experiment"``, ``"run_crossres"`` (adds the
            ``cross_res.*`` source/target checks) or ``"run_profiler"``.
        checkpoint_follows: ``cfg`` is a command that evaluates a checkpoint, whose stored config is validated
            next: the dataset options (``dataset_params.sr_test=2``, ``test.sampling_rates``) are checked then,
            against the checkpoint's dataset, not against this command's default one.
    """
    if entry not in C.ENTRIES:
        raise ValueError(f"entry={entry!r}: allowed values are {', '.join(C.ENTRIES)}")
    cfg = as_config(cfg)
    err = Problems()
    _check_allowed_values(cfg, err)
    if not (cfg.device in ("auto", "cpu") or C.is_cuda_device(cfg.device)):
        err.add("device", cfg.device, f"allowed values are {C.format_allowed(C.devices())} (N = GPU index)")
    err.at_least("seed", cfg.seed, 0, or_minus_one=True)

    net = cfg.net
    err.fraction("net.dropout", net.dropout)
    err.fraction("net.dropout_in", net.dropout_in)
    if net.type in CK_NET_TYPES:
        err.at_least("net.no_hidden", net.no_hidden, 1)
        err.at_least("net.no_blocks", net.no_blocks, 1)
        _check_block_width_factors(cfg, err)
    meta = _data_meta(cfg, Problems() if checkpoint_follows else err, sampling_rates=not checkpoint_follows)
    _check_conv(cfg, err, meta, entry)
    _check_kernel_and_mask(cfg, err)
    _check_train(cfg, err)

    params = cfg.dataset_params
    err.at_least("dataset_params.num_workers", params.num_workers, 0, or_minus_one=True)
    if cfg.protocol == "clean":
        err.fraction("dataset_params.val_fraction", params.val_fraction, closed_low=False)
    resolutions = _plain(cfg.cross_res.eval_resolutions)
    if any(not _is_int(r) or r < 1 for r in resolutions):
        err.add("cross_res.eval_resolutions", resolutions, "resolutions must be ints >= 1")
    rates = _plain(cfg.test.sampling_rates)
    if any(not _is_int(r) or r < 1 for r in rates):
        err.add("test.sampling_rates", rates, "must be ints >= 1 (sr_test values: every k-th sample)")

    if cfg.pretrained and not cfg.pretrained_params.filepath:
        err.add("pretrained_params.filepath", "", "pretrained=True needs the path of a checkpoint file")
    _check_pretrained_wandb(cfg, err)
    _check_entry(cfg, err, entry)
    err.raise_if_any()


def config_warnings(cfg: Any, entry: str = "run_experiment") -> list[str]:
    """Settings that are accepted but have no effect, as readable messages for the run log.

    Old commands set several keys the original ignored (``mask.temperature=15.0``, ``summary``,
    ``train.weight_decay`` on Conv/SRF nets); they still run, and the engine prints these so that
    nobody believes they mattered.
    """
    cfg = as_config(cfg)
    notes: list[str] = []
    for info, value in iter_values(cfg):
        if info.status in (UNUSED, OVERWRITTEN) and value != info.default:
            notes.append(f"{info.path}={value!r} has no effect: {info.doc}")
    if cfg.train.weight_decay > 0 and (cfg.conv.type not in CONTINUOUS_CONV_TYPES or
                                       cfg.net.type not in CK_NET_TYPES):
        notes.append(
            f"train.weight_decay={cfg.train.weight_decay} has no effect: it penalises the norm of sampled "
            f"CKConv/FlexConv kernels only (as in the original), and this model (net.type={cfg.net.type}, "
            f"conv.type={cfg.conv.type}) has none; use train.optimizer_params.weight_decay for optimizer weight decay")
    meta = _data_meta(cfg, Problems()) if cfg.train.channels_last else None
    if meta is not None and meta.data_dim != 2:
        notes.append(f"train.channels_last=True has no effect: {cfg.dataset} is 1D (channels-last is a 2D layout)")
    if entry == "run_crossres" and len(cfg.cross_res.eval_resolutions) == 0:
        notes += _replaced_by_crossres(cfg)
    return notes


def _replaced_by_crossres(cfg: DictConfig) -> list[str]:
    """run_crossres.py sets these per phase (as the original); say so when the user set them."""
    notes = []
    horizon, cross = cfg.conv.horizon, cfg.cross_res
    if cfg.conv.type != "Conv" and horizon not in ("same", None):
        notes.append(f"conv.horizon={horizon} is replaced by resolution + 1 in each phase "
                     f"({cross.source_res + 1}, then {cross.target_res + 1})")
    if cfg.kernel.regularize and cfg.kernel.regularize_params.res is not None:
        notes.append(f"kernel.regularize_params.res={cfg.kernel.regularize_params.res} is replaced by resolution + 1 "
                     f"(+ res_offset in the source phase)")
    if cross.resize:
        notes.append(f"cross_res.resize={cross.resize!r} is replaced by the phase's resolution")
    return notes
