"""Typed configuration schema, override checking and validation.

The schema below mirrors ``cfg/config.yaml`` key for key: every key of the original FlexConv
config (spec section 13) with its original name and meaning, plus the few new keys this framework
adds (documented in the YAML). It is registered in Hydra's ConfigStore as ``base_config`` and is the
first entry of the defaults list of ``cfg/config.yaml``; that makes the composed config a
*structured* config, so

* a key that does not exist (a typo in an override, in ``config.yaml`` or in a preset) fails at
  composition time, and
* a value of the wrong type (``train.epochs=abc``) fails at composition time with a message that
  names the full key (OmegaConf's ``ValidationError``).

What the type system cannot express is checked by :func:`validate_config` (enum-like strings,
ranges, keys that accept an int OR a string, cross-key rules). Hydra's own message for an unknown
override suggests ``+key=...`` rather than the key that was meant, so the entry points first call
:func:`check_overrides_or_exit` on ``sys.argv[1:]``; it names the closest valid keys.

Typical entry point::

    from engine.config import check_overrides_or_exit, validate_or_exit

    @hydra.main(config_path="cfg", config_name="config", version_base=None)
    def main(cfg):
        validate_or_exit(cfg, entry="run_experiment")
        ...

    if __name__ == "__main__":
        check_overrides_or_exit()
        main()

This module must stay importable without torch (tests and tools compose configs without it);
:func:`resolve_device` imports torch lazily.
"""
from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

# Absolute path of the Hydra config directory (entry points use the relative "cfg").
CONFIG_DIR: Path = Path(__file__).resolve().parent.parent / "cfg"
CONFIG_NAME = "config"
SCHEMA_NAME = "base_config"


class ConfigError(ValueError):
    """A bad config key or value. The message names the key, the bad value and what is allowed."""


# ---------------------------------------------------------------------------------------------
# Allowed values of enum-like keys. Kept here (not in the YAML) so the engine can reuse them.
# ---------------------------------------------------------------------------------------------
PROTOCOLS = ("clean", "paper")
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N")
WANDB_MODES = ("auto", "online", "offline", "disabled")
NET_NORMS = ("BatchNorm", "LayerNorm")
NONLINEARITIES = ("ReLU", "LeakyReLU", "GELU", "SiLU")
# net.type values that build a FlexNet / FlexTCN from the conv/kernel/mask sections; the other
# net.type values (CIFARResNet32, ...) are fixed baselines that ignore them.
CK_NET_TYPES = ("ResNet", "TCN")
CONV_TYPES = ("CKConv", "FlexConv", "Conv", "SRF")
CONTINUOUS_CONV_TYPES = ("CKConv", "FlexConv")
KERNEL_TYPES = ("MAGNet", "Gabor", "Fourier", "SIREN", "nSIREN", "MLP")
SIREN_KERNEL_TYPES = ("SIREN", "nSIREN")
# The anti-aliasing regulariser reads the MFN filter parameters, which only these have.
REGULARIZABLE_KERNEL_TYPES = ("MAGNet", "Gabor")
KERNEL_BIAS_INITS = (None, "None", "zero", "uniform")
MASK_TYPES = ("gaussian",)
HORIZON_WORDS = ("same", "full")
USE_FFT_VALUES = (True, False, "auto")
OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop")
# "" and "none" both mean "no scheduler" (the original's default was "").
SCHEDULERS = ("", "none", "cosine", "multistep", "plateau", "exponential")
AUGMENTS = ("None", "resnet", "standard")
REG_TARGETS = ("gabor", "gabor+mask")
REG_FNS = ("l2_relu", "offset_elu")
REG_METHODS = ("together", "together+mask", "summed")
INTERPOLATIONS = ("bilinear", "nearest")
PROFILE_MODES = ("bench", "profile")
PROFILE_DATA_MODES = ("fake", "dataset")
ENTRIES = ("run_experiment", "run_crossres", "run_profiler")


# ---------------------------------------------------------------------------------------------
# Schema. Defaults equal the values in cfg/config.yaml (a test checks this); the YAML carries the
# per-key documentation, so comments here are only about types.
# ---------------------------------------------------------------------------------------------
@dataclass
class NetConfig:
    type: str = "TCN"
    no_hidden: int = 32
    no_blocks: int = 4
    dropout: float = 0.1
    dropout_in: float = 0.0
    norm: str = "BatchNorm"
    nonlinearity: str = "ReLU"
    block_width_factors: List[float] = field(default_factory=lambda: [0.0])


@dataclass
class RegularizeParamsConfig:
    res: Optional[int] = None  # null = derived from the conv horizon at run time
    res_offset: int = 0
    target: str = "gabor+mask"
    fn: str = "l2_relu"
    method: str = "together"
    factor: float = 0.001
    gauss_stddevs: float = 2.0
    gauss_factor: float = 0.5


@dataclass
class SRFConfig:
    scale: float = 0.0


@dataclass
class KernelConfig:
    type: str = "MAGNet"
    dim_linear: int = 0
    no_hidden: int = 32
    no_layers: int = 3
    activ_function: str = "ReLU"
    norm: str = ""
    omega_0: float = 30.0
    learn_omega_0: bool = False
    weight_norm: bool = False
    steerable: bool = False
    init_spatial_value: float = 1.0
    bias_init: Optional[str] = None
    input_scale: float = 25.6
    sampling_rate_norm: float = 1.0
    regularize: bool = False
    regularize_params: RegularizeParamsConfig = field(default_factory=RegularizeParamsConfig)
    srf: SRFConfig = field(default_factory=SRFConfig)


@dataclass
class ConvConfig:
    type: str = "FlexConv"
    use_fft: Any = False  # true | false | "auto"
    bias: bool = True
    padding: str = "same"
    stride: int = 1
    horizon: Any = "same"  # int | "same" | "full"
    cache: bool = False


@dataclass
class MaskConfig:
    use: bool = True
    type: str = "gaussian"
    temperature: float = 0.0
    init_value: float = 0.075
    dynamic_cropping: bool = True
    threshold: float = 0.1


@dataclass
class DatasetParamsConfig:
    root: str = ""
    in_ram: bool = False
    from_cache: bool = False
    permuted: bool = False
    noise_padded: bool = False
    memory_size: int = -1
    mfcc: bool = False
    drop_rate: float = 0.0
    seq_length: int = -1
    num_workers: int = -1
    val_fraction: float = 0.1
    synthetic: bool = False


@dataclass
class CrossResConfig:
    resize: str = ""
    interpolation: str = "bilinear"
    resize_blur: bool = False
    resize_blur_sigma: float = 1.0
    blur: bool = False
    source_res: int = 0
    target_res: int = 0
    finetune_epochs: int = 100
    eval_resolutions: List[int] = field(default_factory=list)


@dataclass
class OptimizerParamsConfig:
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class SchedulerParamsConfig:
    decay_steps: Any = -1  # int | list of ints (multistep milestones, epochs); -1 = unset
    decay_factor: float = -1.0
    patience: int = -1
    warmup_epochs: int = 2


@dataclass
class TrainConfig:
    do: bool = True
    augment: str = "None"
    report_top5_acc: bool = False
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.01
    omega_0_lr_factor: float = 1.0
    mask_params_lr_factor: float = 0.1
    weight_decay: float = 0.0
    mask_l2_norm: float = 0.0
    magnitude_reg: float = 0.0
    grad_clip: float = 0.0
    optimizer: str = "Adam"
    optimizer_params: OptimizerParamsConfig = field(default_factory=OptimizerParamsConfig)
    scheduler: str = "cosine"
    scheduler_params: SchedulerParamsConfig = field(default_factory=SchedulerParamsConfig)
    resume: Any = False  # false | true | path
    mixed_precision: bool = False
    early_stop_patience: int = 100
    limit_train_batches: int = -1
    limit_eval_batches: int = -1


@dataclass
class TestConfig:
    before_train: bool = False
    patched: bool = False


@dataclass
class WandbConfig:
    project: str = "flexconv"
    entity: Optional[str] = None
    dir: str = "./wandb"
    mode: str = "auto"


@dataclass
class PretrainedParamsConfig:
    filepath: str = ""


@dataclass
class PretrainedWandbParamsConfig:
    filename: str = ""
    run_path: str = ""


@dataclass
class ProfileConfig:
    n_batches: int = 30
    directory: str = ""
    data_mode: str = "fake"
    data_shape: int = 0
    mode: str = "bench"
    grow_masks: bool = False
    warmup_batches: int = 5


@dataclass
class TestcaseConfig:
    load: bool = False
    save: bool = False
    epochs: int = 1
    batches: int = 20
    path: str = ""


@dataclass
class Config:
    """Root of the schema: one field per top-level key of cfg/config.yaml."""

    net: NetConfig = field(default_factory=NetConfig)
    kernel: KernelConfig = field(default_factory=KernelConfig)
    conv: ConvConfig = field(default_factory=ConvConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    dataset: str = "MNIST1D"
    dataset_params: DatasetParamsConfig = field(default_factory=DatasetParamsConfig)
    cross_res: CrossResConfig = field(default_factory=CrossResConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    protocol: str = "clean"
    device: str = "auto"
    debug: bool = False
    pretrained: bool = False
    pretrained_params: PretrainedParamsConfig = field(default_factory=PretrainedParamsConfig)
    pretrained_wandb: bool = False
    pretrained_wandb_params: PretrainedWandbParamsConfig = field(
        default_factory=PretrainedWandbParamsConfig
    )
    pretrained_strict: bool = True
    seed: int = 0
    deterministic: bool = False
    comment: str = ""
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    time: bool = False
    summary: List[int] = field(default_factory=lambda: [0])
    summary_depth: int = 5
    testcase: TestcaseConfig = field(default_factory=TestcaseConfig)


def register_configs() -> None:
    """Store the schema as ``base_config`` (idempotent; done on import of this module)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)


register_configs()


# ---------------------------------------------------------------------------------------------
# Composition helper (tests, notebooks, tools): the same config the entry points get.
# ---------------------------------------------------------------------------------------------
def compose_config(overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """Compose ``cfg/config.yaml`` with Hydra overrides, outside of ``@hydra.main``.

    Runs :func:`check_overrides` first, so a misspelt key raises :class:`ConfigError` with a
    suggestion; wrong types raise Hydra's ``ConfigCompositionException`` naming the key. Does not
    call :func:`validate_config`. Not for use inside a running ``@hydra.main`` app (Hydra allows
    one initialisation at a time); there, use the ``cfg`` Hydra passes in.
    """
    from hydra import compose, initialize_config_dir

    check_overrides(overrides)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra_config)


# ---------------------------------------------------------------------------------------------
# Unknown-key check on raw command-line overrides (before Hydra composes).
# ---------------------------------------------------------------------------------------------
# Config groups that may be selected with "group=option" or "group/sub=option".
_CONFIG_GROUPS = ("experiment", "hydra")


def schema_keys() -> list[str]:
    """Every dotted key path of the schema, sections included (``"train"``, ``"train.lr"``, ...)."""
    return list(_leaf_types())


@functools.lru_cache(maxsize=None)
def _schema_kinds() -> tuple[tuple[str, str], ...]:
    """Walk the schema once (it is fixed at import); every override check reuses the result."""
    kinds: dict[str, str] = {}

    def walk(node: DictConfig, prefix: str) -> None:
        for key in node.keys():
            path = f"{prefix}{key}"
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                kinds[path] = "dict"
                walk(child, path + ".")
            elif isinstance(child, ListConfig):
                kinds[path] = "list"
            else:
                kinds[path] = "value"

    walk(OmegaConf.structured(Config), "")
    return tuple(kinds.items())


def _leaf_types() -> dict[str, str]:
    """Map key path -> "dict" | "list" | "value" (lists may be indexed: ``summary.0=64``)."""
    return dict(_schema_kinds())


def _is_known_key(path: str, kinds: dict[str, str]) -> bool:
    if path in kinds:
        return True
    # "summary.0" / "net.block_width_factors.2": an index into a list-valued key.
    head, _, tail = path.rpartition(".")
    return bool(head) and kinds.get(head) == "list" and tail.isdigit()


def suggest_keys(key: str, n: int = 3) -> list[str]:
    """Closest valid keys (or config groups) for a misspelt ``key``, best first; may be empty.

    A candidate scores the better of two similarities: of the whole dotted path (catches typos,
    ``net.no_hiden``), and of the last component alone (catches a key given without its section,
    ``no_hidden``, or in the wrong one, ``train.horizon``). Only candidates close to the best are
    returned, so an obvious fix is not buried among loose matches.
    """
    candidates = schema_keys() + [g for g in _CONFIG_GROUPS if g != "hydra"]
    last = key.rsplit(".", 1)[-1]
    scored = []
    for path in candidates:
        whole = difflib.SequenceMatcher(None, key, path).ratio()
        leaf = difflib.SequenceMatcher(None, last, path.rsplit(".", 1)[-1]).ratio()
        scored.append((max(whole, 0.98 * leaf), path))
    scored.sort(key=lambda item: (-item[0], item[1]))
    if not scored or scored[0][0] < 0.7:
        return []
    floor = max(0.7, scored[0][0] - 0.08)
    return [path for score, path in scored[:n] if score >= floor]


def unknown_key_message(key: str, override: Optional[str] = None) -> str:
    where = f" (in override '{override}')" if override and override != key else ""
    msg = f"Unknown config key '{key}'{where}."
    suggestions = suggest_keys(key)
    if suggestions:
        msg += " Did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"
    else:
        msg += " No similar key exists."
    msg += f" All keys are listed, with comments, in {CONFIG_DIR / 'config.yaml'}."
    return msg


def check_overrides(overrides: Iterable[str]) -> None:
    """Raise :class:`ConfigError` if a command-line override names a key not in the schema.

    ``overrides`` are raw arguments as on the command line (``sys.argv[1:]``). Skipped: flags
    (``-m``, ``--cfg``, ...), arguments without ``=`` (flag values), ``hydra.*`` keys, group
    selections (``experiment=...``, ``hydra/launcher=...``), and Hydra's add/force-add/delete
    forms (``+key``, ``++key``, ``~key``), whose semantics Hydra itself checks.
    """
    kinds = _leaf_types()
    problems: list[str] = []
    for arg in overrides:
        if arg.startswith("-") or "=" not in arg:
            continue
        key = arg.split("=", 1)[0].strip()
        if not key or key[0] in "+~":
            continue
        key = key.split("@", 1)[0]  # "group@package=option" form
        if key.startswith("hydra.") or key == "hydra":
            continue
        if "/" in key or key in _CONFIG_GROUPS:
            group = key.split("/", 1)[0]
            if group not in _CONFIG_GROUPS:
                problems.append(
                    f"Unknown config group '{key}' (in override '{arg}'). "
                    f"Config groups: {', '.join(_CONFIG_GROUPS)}."
                )
            continue
        if not _is_known_key(key, kinds):
            problems.append(unknown_key_message(key, arg))
    if problems:
        raise ConfigError("\n".join(problems))


def _exit_with(error: ConfigError) -> None:
    print(f"Config error: {error}", file=sys.stderr)
    sys.exit(2)


def check_overrides_or_exit(argv: Optional[Sequence[str]] = None) -> None:
    """Entry-point helper: :func:`check_overrides` on ``sys.argv[1:]``; on error print the
    message to stderr and exit with status 2 (before Hydra prints its less helpful one)."""
    try:
        check_overrides(sys.argv[1:] if argv is None else argv)
    except ConfigError as error:
        _exit_with(error)


# ---------------------------------------------------------------------------------------------
# Value validation (after composition).
# ---------------------------------------------------------------------------------------------
def _fmt_allowed(allowed: Iterable[Any]) -> str:
    return ", ".join("''" if a == "" else ("null" if a is None else str(a)) for a in allowed)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int; "conv.horizon=True" must not pass as horizon 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Errors:
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
            self.add(key, value, f"allowed values are {_fmt_allowed(allowed)}{extra}")

    def at_least(self, key: str, value: Any, low: float, *, or_minus_one: bool = False) -> None:
        if or_minus_one and value == -1:
            return
        if not _is_number(value) or value < low:
            text = f"must be >= {low}" + (" (or -1)" if or_minus_one else "")
            self.add(key, value, text)

    def fraction(self, key: str, value: Any, *, closed_low: bool = True, open_high: bool = True) -> None:
        ok = _is_number(value)
        if ok:
            ok = (value >= 0 if closed_low else value > 0) and (value < 1 if open_high else value <= 1)
        if not ok:
            low = "0 <=" if closed_low else "0 <"
            high = "< 1" if open_high else "<= 1"
            self.add(key, value, f"must satisfy {low} value {high}")


def _as_config(cfg: Any) -> DictConfig:
    if isinstance(cfg, DictConfig):
        return cfg
    if is_dataclass(cfg):
        return OmegaConf.structured(cfg)
    return OmegaConf.create(cfg)


def _plain(value: Any) -> Any:
    if isinstance(value, (ListConfig, DictConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _check_block_width_factors(cfg: DictConfig, err: _Errors) -> None:
    key = "net.block_width_factors"
    factors = list(_plain(cfg.net.block_width_factors))
    if not factors:
        err.add(key, factors, "must be [0.0] (all blocks at width net.no_hidden) or (factor, count) pairs")
        return
    if factors[0] == 0:
        return  # disabled: every block has width net.no_hidden
    if len(factors) % 2:
        err.add(key, factors, "must be a flat list of (factor, count) pairs, e.g. [1.0, 2, 1.5, 3, 2.0, 2]")
        return
    pairs = list(zip(factors[0::2], factors[1::2]))
    for factor, count in pairs:
        if factor <= 0:
            err.add(key, factors, f"width factor {factor} must be > 0")
            return
        if count < 1 or float(count) != int(count):
            err.add(key, factors, f"block count {count} must be a positive integer")
            return
    total = int(sum(count for _, count in pairs))
    if total != cfg.net.no_blocks:
        err.add(
            key,
            factors,
            f"its block counts sum to {total} but net.no_blocks={cfg.net.no_blocks}; "
            "they must be equal (or use [0.0] for equal widths)",
        )


def _check_horizon(cfg: DictConfig, err: _Errors) -> None:
    horizon = cfg.conv.horizon
    if isinstance(horizon, str) and horizon.strip().isdigit():
        horizon = int(horizon)  # "33" from YAML means the same as 33
    if cfg.conv.type == "Conv":
        if not _is_int(horizon) or horizon < 1:
            err.add("conv.horizon", cfg.conv.horizon, "with conv.type=Conv it is the kernel size: an int >= 1")
        return
    if _is_int(horizon):
        if horizon < 1:
            err.add("conv.horizon", horizon, "an int must be >= 1 (odd for 2D data)")
    elif horizon not in HORIZON_WORDS:
        err.add("conv.horizon", horizon, f"allowed values are an int >= 1 (odd for 2D data), {_fmt_allowed(HORIZON_WORDS)}")


def _check_scheduler(cfg: DictConfig, err: _Errors) -> None:
    train = cfg.train
    name = "none" if train.scheduler.lower() == "none" else train.scheduler
    err.choice("train.scheduler", name, SCHEDULERS)
    params = train.scheduler_params
    factor = params.decay_factor
    if name == "multistep":
        steps = _plain(params.decay_steps)
        steps = [steps] if _is_int(steps) else steps
        if not (isinstance(steps, list) and steps and all(_is_int(s) and s >= 1 for s in steps)):
            err.add(
                "train.scheduler_params.decay_steps",
                _plain(params.decay_steps),
                "with train.scheduler=multistep it must be a positive int or a list of them (milestone epochs)",
            )
        if factor <= 0:
            err.add("train.scheduler_params.decay_factor", factor, "with multistep it must be > 0 (lr is divided by it)")
    if name == "plateau":
        if factor <= 0:
            err.add("train.scheduler_params.decay_factor", factor, "with plateau it must be > 0 (lr is divided by it)")
        if params.patience < 0:
            err.add("train.scheduler_params.patience", params.patience, "with plateau it must be >= 0 (epochs)")
    if name == "exponential" and not 0 < factor <= 1:
        err.add(
            "train.scheduler_params.decay_factor",
            factor,
            "with exponential it is the per-epoch multiplier (gamma): 0 < value <= 1",
        )
    warmup = params.warmup_epochs
    if warmup != -1 and warmup < 0:
        err.add("train.scheduler_params.warmup_epochs", warmup, "must be >= 0, or -1 for no warm-up")
    # A run shorter than its warm-up (a paper command with train.epochs=1 appended) is allowed: it
    # simply ends inside the warm-up.


def validate_config(cfg: Any, *, entry: str = "run_experiment") -> None:
    """Check values the schema's types cannot check; raise :class:`ConfigError` listing them all.

    Args:
        cfg: the composed config (DictConfig, a :class:`Config` instance or a plain dict).
        entry: which entry point runs it: ``"run_experiment"``, ``"run_crossres"`` (adds the
            ``cross_res.*`` source/target checks) or ``"run_profiler"``.
    Raises:
        ConfigError: each line names the key, the bad value and the allowed values.
    """
    if entry not in ENTRIES:
        raise ValueError(f"entry={entry!r}: allowed values are {', '.join(ENTRIES)}")
    cfg = _as_config(cfg)
    err = _Errors()

    # --- top level ------------------------------------------------------------------------
    err.choice("protocol", cfg.protocol, PROTOCOLS)
    if not (cfg.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", str(cfg.device))):
        err.add("device", cfg.device, f"allowed values are {_fmt_allowed(DEVICE_NAMES)} (N = GPU index)")
    err.choice("wandb.mode", cfg.wandb.mode, WANDB_MODES)
    err.at_least("seed", cfg.seed, 0, or_minus_one=True)
    if not cfg.dataset:
        err.add("dataset", cfg.dataset, "must name a dataset (e.g. MNIST1D, MNIST, sMNIST, CIFAR10, sCIFAR10)")

    # --- net ------------------------------------------------------------------------------
    net = cfg.net
    if not net.type:
        err.add("net.type", net.type, "must name a model (ResNet, TCN, CIFARResNet32, ...)")
    err.choice("net.norm", net.norm, NET_NORMS)
    err.choice("net.nonlinearity", net.nonlinearity, NONLINEARITIES)
    err.fraction("net.dropout", net.dropout)
    err.fraction("net.dropout_in", net.dropout_in)
    if net.type in CK_NET_TYPES:
        err.at_least("net.no_hidden", net.no_hidden, 1)
        err.at_least("net.no_blocks", net.no_blocks, 1)
    _check_block_width_factors(cfg, err)

    # --- conv / kernel / mask -------------------------------------------------------------
    conv, kernel, mask = cfg.conv, cfg.kernel, cfg.mask
    err.choice("conv.type", conv.type, CONV_TYPES)
    _check_horizon(cfg, err)
    if not (isinstance(conv.use_fft, bool) or conv.use_fft == "auto"):
        err.add("conv.use_fft", conv.use_fft, "allowed values are true, false, auto")
    err.at_least("conv.stride", conv.stride, 1)
    if conv.type in CONTINUOUS_CONV_TYPES:
        err.choice("kernel.type", kernel.type, KERNEL_TYPES)
        err.at_least("kernel.no_hidden", kernel.no_hidden, 1)
        err.at_least("kernel.no_layers", kernel.no_layers, 1)
        if kernel.type in SIREN_KERNEL_TYPES and not kernel.omega_0 > 0:
            err.add("kernel.omega_0", kernel.omega_0, f"must be > 0 for kernel.type={kernel.type}")
        if kernel.type in ("MAGNet", "Gabor") and not kernel.input_scale > 0:
            err.add("kernel.input_scale", kernel.input_scale, "must be > 0")
        if not kernel.sampling_rate_norm > 0:
            err.add("kernel.sampling_rate_norm", kernel.sampling_rate_norm, "must be > 0")
        err.choice("kernel.bias_init", kernel.bias_init, KERNEL_BIAS_INITS)
    if conv.type == "FlexConv":
        err.choice("mask.type", mask.type, MASK_TYPES)
        if not mask.init_value > 0:
            err.add("mask.init_value", mask.init_value, "must be > 0 (initial Gaussian sigma; paper: 0.075)")
        err.fraction("mask.threshold", mask.threshold, closed_low=False)

    reg = kernel.regularize_params
    err.choice("kernel.regularize_params.target", reg.target, REG_TARGETS)
    err.choice("kernel.regularize_params.fn", reg.fn, REG_FNS)
    err.choice("kernel.regularize_params.method", reg.method, REG_METHODS)
    err.at_least("kernel.regularize_params.factor", reg.factor, 0)
    err.at_least("kernel.regularize_params.gauss_stddevs", reg.gauss_stddevs, 0)
    if reg.res is not None and reg.res < 1:
        err.add("kernel.regularize_params.res", reg.res, "must be null (derive from the horizon) or an int >= 1")
    if kernel.regularize:
        if conv.type != "FlexConv":
            err.add(
                "kernel.regularize",
                True,
                f"the anti-aliasing penalty only acts on FlexConv layers, but conv.type={conv.type}",
            )
        if kernel.type not in REGULARIZABLE_KERNEL_TYPES:
            err.add(
                "kernel.regularize",
                True,
                f"needs kernel.type in {_fmt_allowed(REGULARIZABLE_KERNEL_TYPES)}, got {kernel.type}",
            )

    # --- train ----------------------------------------------------------------------------
    train = cfg.train
    if train.do:
        err.at_least("train.epochs", train.epochs, 1)
        if not train.lr > 0:
            err.add("train.lr", train.lr, "must be > 0")
    else:
        err.at_least("train.epochs", train.epochs, 0, or_minus_one=True)
    err.at_least("train.batch_size", train.batch_size, 1)
    augment = "None" if train.augment.lower() == "none" else train.augment
    err.choice("train.augment", augment, AUGMENTS)
    for key in ("omega_0_lr_factor", "mask_params_lr_factor", "weight_decay", "grad_clip"):
        err.at_least(f"train.{key}", train[key], 0)
    if train.mask_l2_norm != 0:
        err.add(
            "train.mask_l2_norm",
            train.mask_l2_norm,
            "only 0 is supported: in the original code any other value crashed (the penalty read a "
            "mask attribute that does not exist), so no published run used it",
        )
    err.choice("train.optimizer", train.optimizer, OPTIMIZERS)
    if train.optimizer == "SGD" and train.optimizer_params.momentum < 0:
        err.add("train.optimizer_params.momentum", train.optimizer_params.momentum, "SGD needs momentum >= 0")
    err.at_least("train.optimizer_params.weight_decay", train.optimizer_params.weight_decay, 0)
    _check_scheduler(cfg, err)
    resume = train.resume
    if not (isinstance(resume, bool) or (isinstance(resume, str) and resume.strip())):
        err.add("train.resume", resume, "allowed values are false, true (<run dir>/checkpoints/last.pt) or a checkpoint path")
    if isinstance(resume, str) and resume.strip().lower() in ("true", "false"):
        err.add("train.resume", resume, "write true/false unquoted (a quoted string is taken as a path)")
    err.at_least("train.early_stop_patience", train.early_stop_patience, 1, or_minus_one=True)
    err.at_least("train.limit_train_batches", train.limit_train_batches, 1, or_minus_one=True)
    err.at_least("train.limit_eval_batches", train.limit_eval_batches, 1, or_minus_one=True)

    # --- data -----------------------------------------------------------------------------
    params = cfg.dataset_params
    err.at_least("dataset_params.num_workers", params.num_workers, 0, or_minus_one=True)
    if cfg.protocol == "clean":
        err.fraction("dataset_params.val_fraction", params.val_fraction, closed_low=False)
    err.choice("cross_res.interpolation", cfg.cross_res.interpolation, INTERPOLATIONS)
    for res in _plain(cfg.cross_res.eval_resolutions):
        if res < 1:
            err.add("cross_res.eval_resolutions", _plain(cfg.cross_res.eval_resolutions), "resolutions must be ints >= 1")
            break

    # --- checkpoints / legacy switches ----------------------------------------------------
    if cfg.pretrained and not cfg.pretrained_params.filepath:
        err.add("pretrained_params.filepath", "", "pretrained=True needs the path of a checkpoint file")
    if cfg.pretrained_wandb:
        err.add(
            "pretrained_wandb",
            True,
            "loading through wandb.restore is not supported (it needs network access); download the "
            "file and use pretrained=True pretrained_params.filepath=<file>",
        )
    if cfg.testcase.load or cfg.testcase.save:
        err.add(
            "testcase.load/save",
            True,
            "the original loss-trace testcases are not supported (their reference losses depend on the "
            "original RNG streams); use a dev preset or train.limit_train_batches for smoke runs",
        )

    # --- entry-specific -------------------------------------------------------------------
    if entry == "run_crossres":
        cross = cfg.cross_res
        for key in ("source_res", "target_res"):
            value = cross[key]
            if value < 2 or value % 2:
                err.add(f"cross_res.{key}", value, "must be a positive even resolution (e.g. 16, 32)")
        if cross.source_res == cross.target_res:
            err.add("cross_res.target_res", cross.target_res, "must differ from cross_res.source_res")
        err.at_least("cross_res.finetune_epochs", cross.finetune_epochs, 1)
    if entry == "run_profiler":
        prof = cfg.profile
        err.choice("profile.mode", prof.mode, PROFILE_MODES)
        err.choice("profile.data_mode", prof.data_mode, PROFILE_DATA_MODES)
        err.at_least("profile.n_batches", prof.n_batches, 1)
        err.at_least("profile.warmup_batches", prof.warmup_batches, 0)
        err.at_least("profile.data_shape", prof.data_shape, 0)
    else:
        # Still reject typos in these enums early, whatever the entry point.
        err.choice("profile.mode", cfg.profile.mode, PROFILE_MODES)

    if err.items:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(err.items))


def validate_or_exit(cfg: Any, *, entry: str = "run_experiment") -> None:
    """Entry-point helper: :func:`validate_config`; on error print it and exit with status 2."""
    try:
        validate_config(cfg, entry=entry)
    except ConfigError as error:
        _exit_with(error)


def config_warnings(cfg: Any) -> list[str]:
    """Settings that are accepted but have no effect, as readable messages for the run log.

    Old commands set several keys the original ignored (``mask.temperature=15.0``, ``summary``,
    ``train.weight_decay`` on Conv/SRF nets); they still run, and the engine prints these so that
    nobody believes they mattered.
    """
    cfg = _as_config(cfg)
    notes: list[str] = []

    def unused(key: str, value: Any, default: Any, reason: str) -> None:
        if value != default:
            notes.append(f"{key}={value!r} has no effect: {reason}")

    unused("mask.temperature", cfg.mask.temperature, 0.0, "only for the sigmoid mask, which does not exist")
    unused("conv.cache", cfg.conv.cache, False, "unused in the original too")
    unused("time", cfg.time, False, "unused in the original too")
    unused("test.patched", cfg.test.patched, False, "segmentation only, not implemented")
    unused("kernel.regularize_params.gauss_factor", cfg.kernel.regularize_params.gauss_factor, 0.5, "legacy, unused")
    unused("train.magnitude_reg", cfg.train.magnitude_reg, 0.0, "unused in the original too")
    unused("kernel.dim_linear", cfg.kernel.dim_linear, 0, "set automatically from the dataset (1 or 2)")
    for key, default in (("in_ram", False), ("from_cache", False), ("memory_size", -1), ("mfcc", False),
                         ("drop_rate", 0.0), ("seq_length", -1)):
        unused(f"dataset_params.{key}", cfg.dataset_params[key], default,
               "only for datasets of the original that this framework does not include")
    for key, default in (("blur", False), ("resize_blur", False)):
        unused(f"cross_res.{key}", cfg.cross_res[key], default, "the pre-resize Gaussian blur is not implemented "
               "(no paper run used it)")
    if cfg.train.weight_decay > 0 and (cfg.conv.type not in CONTINUOUS_CONV_TYPES or cfg.net.type not in CK_NET_TYPES):
        notes.append(
            f"train.weight_decay={cfg.train.weight_decay} has no effect: it penalises the norm of sampled "
            f"CKConv/FlexConv kernels only (as in the original), and this model (net.type={cfg.net.type}, "
            f"conv.type={cfg.conv.type}) has none; use train.optimizer_params.weight_decay for optimizer weight decay"
        )
    return notes


# ---------------------------------------------------------------------------------------------
# Run-time resolution of "auto" values that depend on the machine.
# ---------------------------------------------------------------------------------------------
def resolve_device(device: str) -> "Any":
    """``device`` key -> ``torch.device``. ``auto`` picks CUDA when available, else CPU.

    Raises:
        ConfigError: for ``cuda`` / ``cuda:N`` without CUDA or with a GPU index out of range.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", str(device))
    if not match:
        raise ConfigError(f"device={device!r} is invalid: allowed values are {_fmt_allowed(DEVICE_NAMES)}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device={device} was requested but CUDA is not available on this machine "
            "(torch.cuda.is_available() is False). Use device=cpu, or device=auto to pick CUDA when present."
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device={device} is invalid: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device(device)
