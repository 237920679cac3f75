"""The configuration schema: every key once, with its type, default, allowed values and meaning.

Keys keep the names and meanings of the original FlexConv ``cfg/config.yaml``, so every published
command runs unchanged. Defaults are:

* the DEFAULT EXPERIMENT (FlexTCN on MNIST-1D, CPU, minutes) for the keys whose original default was
  a placeholder that could not run (-1, "", 0.0), marked "[default exp.]";
* the original defaults for every other key, except a few that every published command sets
  explicitly anyway, marked "[orig: X]";
* new keys, marked "[new]".

Each key has a status (``key(..., status=...)``): used; accepted but unused (kept so old commands still parse; a
run prints a note when one is set, ``config.validation.config_warnings``); overwritten by the run; or rejected
(only its default is allowed, and validation says why).

The schema is registered in Hydra's ConfigStore as ``base_config``, the first entry of the defaults
list of ``cfg/config.yaml``: a misspelt key or a value of the wrong type fails at composition time,
naming the key. ``docs/CONFIG.md`` is generated from this file (``python -m config.docs``).
Allowed values are in :mod:`config.choices`; what the types cannot say is checked by
:mod:`config.validation`.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from . import choices as C

SCHEMA_NAME = "base_config"


# What a key does (KeyInfo.status). Validation, the run's notes and docs/CONFIG.md read it from here.
USED = "used"
UNUSED = "unused"            # accepted so that old commands parse; a value other than the default prints a note
OVERWRITTEN = "overwritten"  # accepted; the run sets it itself (a value other than the default prints a note)
REJECTED = "rejected"        # only the default is allowed; ``doc`` says why
STATUSES = (USED, UNUSED, OVERWRITTEN, REJECTED)


def key(default: Any, doc: str, *, allowed: tuple | Callable[[], tuple] | None = None,
        parse: Callable[[Any], Any] | None = None, status: str = USED, no_effect_on: str = "") -> Any:
    """A schema field. ``allowed``: the values it may take (a tuple, or a function returning them from the code
    that implements them); ``parse``: the spelling rule applied before comparing with ``allowed``; ``status``:
    one of :data:`STATUSES` (for UNUSED / OVERWRITTEN / REJECTED keys ``doc`` is the reason); ``no_effect_on``:
    the runs in which a used key does nothing (docs/CONFIG.md lists them)."""
    if status not in STATUSES:
        raise ValueError(f"status={status!r}: allowed values are {', '.join(STATUSES)}")
    metadata = {"doc": doc, "allowed": allowed, "parse": parse, "status": status, "no_effect_on": no_effect_on}
    if isinstance(default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, doc: str = "") -> Any:
    return field(default_factory=cls, metadata={"doc": doc or (cls.__doc__ or "").strip()})


@dataclass
class NetConfig:
    """The network (`models/`)."""

    type: str = key("TCN", "[default exp.] model: ResNet (FlexNet, 2D / ResNet 1D) | TCN (FlexTCN/CKTCN, 1D) | "
                    "CIFARResNet20/32/44/56/110, OriginalResnet10/18 (fixed baselines that ignore "
                    "conv/kernel/mask)", allowed=C.model_names)
    no_hidden: int = key(32, "[default exp.] base width C (channels)")
    no_blocks: int = key(4, "[default exp.] number of residual blocks")
    dropout: float = key(0.1, "[default exp.; orig: 0.0] dropout inside the blocks")
    dropout_in: float = key(0.0, "element dropout on the raw inputs (train only, scaled by 1/(1-p))")
    norm: str = key("BatchNorm", "[default exp.] normalisation; LayerNorm = GroupNorm with 1 group", allowed=C.net_norms)
    nonlinearity: str = key("ReLU", "activation in the blocks (GELU, SiLU: [new])", allowed=C.nonlinearities)
    block_width_factors: List[float] = key([0.0], "flat (factor, count) pairs, e.g. [1.0, 2, 1.5, 3, 2.0, 2]; counts "
                                           "sum to no_blocks; [0.0] = all blocks at width C")


@dataclass
class RegularizeParamsConfig:
    """Anti-aliasing penalty (``kernel.regularize``)."""

    res: Optional[int] = key(None, "[new meaning] kernel grid size whose Nyquist frequency is the budget; null = "
                             "derived from the conv horizon at run time (the original default 0 penalised everything)")
    res_offset: int = key(0, "run_crossres.py: added to the source-phase res")
    target: str = key("gabor+mask", "gabor+mask also penalises the mask's frequency (2D only)", allowed=C.regularizer_targets)
    fn: str = key("l2_relu", "penalty of the excess frequency", allowed=C.regularizer_functions)
    method: str = key("together", "per-filter budget vs. one budget per layer", allowed=C.regularizer_methods)
    factor: float = key(0.001, "lambda, weight of the penalty (paper runs: 0.1)")
    gauss_stddevs: float = key(2.0, "s: how many Gaussian std devs count towards a filter's frequency")
    gauss_factor: float = key(0.5, "legacy, unused in the original too", status=UNUSED)


@dataclass
class SRFConfig:
    """N-Jet (SRF) layers."""

    scale: float = key(0.0, "N-Jet (SRF) scale_sigma multiplier; run_crossres.py sets target/source for fine-tuning")


@dataclass
class KernelConfig:
    """The kernel network of CKConv / FlexConv."""

    type: str = key("MAGNet", "[default exp.] kernel network", allowed=C.kernel_types)
    dim_linear: int = key(0, "set from the dataset (1 = sequences, 2 = images)", status=OVERWRITTEN)
    no_hidden: int = key(32, "[default exp.] hidden width H of the kernel net")
    no_layers: int = key(3, "[default exp.] L: MFN nets (MAGNet/Gabor/Fourier) have L hidden linears and L+1 filters; "
                         "SIREN/MLP: total layers")
    activ_function: str = key("ReLU", '[default exp.; orig: ""] activation of the MLP kernel net (MLP only)')
    norm: str = key("", 'normalisation inside the MLP kernel net ("" = none; MLP only)')
    omega_0: float = key(30.0, "[default exp.; orig: 0.0] SIREN/nSIREN frequency omega_0 (unused by MFN nets)")
    learn_omega_0: bool = key(False, "learn omega_0 (lr = train.lr * train.omega_0_lr_factor)")
    weight_norm: bool = key(False, "weight normalisation in SIREN/MLP kernel nets")
    steerable: bool = key(False, "MAGNet with rotated envelopes (2D)")
    init_spatial_value: float = key(1.0, "MAGNet/Gabor envelope centres ~ U(-v, v); FlexConv overrides it with "
                                    "1.667 * mask.init_value")
    bias_init: Optional[str] = key(None, 'kernel-net bias init; null or "None" = PyTorch default',
                                   allowed=C.kernel_bias_inits)
    input_scale: float = key(25.6, "MAGNet/Gabor frequency scale (divided by sqrt(L+1) per layer)")
    sampling_rate_norm: float = key(1.0, "multiplier of the sampled kernel (cross-resolution sets (source/target)^2)")
    regularize: bool = key(False, "add the anti-aliasing penalty (FlexConv / SeparableFlexConv with MAGNet/Gabor only)")
    regularize_params: RegularizeParamsConfig = section(RegularizeParamsConfig)
    srf: SRFConfig = section(SRFConfig)


@dataclass
class ConvConfig:
    """The convolution layers."""

    type: str = key("FlexConv", "[default exp.] CKConv | FlexConv | SeparableFlexConv ([new] depthwise FlexConv + 1x1 "
                    "mix) | Conv (discrete nn.ConvNd) | SRF (N-Jet, 2D)",
                    allowed=C.conv_types)
    use_fft: Any = key("auto", "FFT convolution: true | false | auto [new default; the original's is false] (the "
                       "faster exact path for each layer's current kernel and input size; README 'Spatial vs FFT')")
    bias: bool = key(True, "conv bias AND kernel-net biases")
    padding: str = key("same", "padding of conv.type=Conv (only same)")
    stride: int = key(1, "stride of conv.type=Conv (only 1)")
    horizon: Any = key("same", "kernel grid size: an int (odd for 2D; the kernel size for conv.type=Conv) | same "
                       "(input length/size) | full")
    cache: bool = key(False, "unused in the original too", status=UNUSED)


@dataclass
class MaskConfig:
    """FlexConv's Gaussian mask."""

    use: bool = key(True, "multiply the kernel by the mask")
    type: str = key("gaussian", '[default exp.; orig: ""] mask type', allowed=C.mask_types)
    temperature: float = key(0.0, "sigmoid mask only, never implemented; paper commands pass 15.0", status=UNUSED)
    init_value: float = key(0.075, "[default exp.; orig: 0.0] initial sigma of the mask (on the [-1, 1] grid); "
                            "paper: 0.075")
    dynamic_cropping: bool = key(True, "crop the kernel where the mask is below `threshold` (paper: on)")
    threshold: float = key(0.1, "tau of the cropping rule")


@dataclass
class DatasetParamsConfig:
    """Dataset options."""

    root: str = key("", 'data directory; "" = <project root>/data')
    in_ram: bool = key(False, "downsampled ImageNet (Imagenet8/16/32/64, Imagenet-k) stored as image folders: decode "
                       "every image once into one uint8 tensor in memory instead of at every access (the official "
                       "pickled files are always read into memory); with from_cache: read the cache into memory "
                       "instead of memory-mapping it",
                       no_effect_on="datasets other than the downsampled ImageNet ones")
    from_cache: bool = key(False, "downsampled ImageNet: write the decoded uint8 images once to "
                           "<data root>/cache/Imagenet{k}/{train,val}.pt and memory-map them in later runs (fast start, "
                           "one copy shared by runs and workers; rebuilt when the source files change)",
                           no_effect_on="datasets other than the downsampled ImageNet ones")
    permuted: bool = key(False, "sMNIST -> pMNIST (one fixed permutation drawn from `seed`, stored in the checkpoint)")
    noise_padded: bool = key(False, "sCIFAR10 -> noise-padded CIFAR-10 (npCIFAR10; noise fixed by `seed`, stored in "
                             "the checkpoint)")
    memory_size: int = key(-1, "CopyMemory: number of symbols to remember; -1 = 10")
    mfcc: bool = key(False, "SpeechCommands: 20 MFCCs per 6.25 ms frame ([20, 161]) instead of the raw waveform "
                     "([1, 16000]); see datasets/audio.py")
    drop_rate: float = key(0.0, "SpeechCommands / CharTrajectories: percent of the time steps dropped from every "
                           "sample (the CKConv recipes: 30, 50, 70), fixed by `seed`; adds a mask channel (1 = kept)")
    seq_length: int = key(-1, "AddProblem: sequence length; CopyMemory: blank steps between the symbols and the "
                          "recall marker; -1 = 100")
    sr_train: int = key(1, "[new, from CKConv] SpeechCommands / CharTrajectories: train and validate on every k-th "
                        "sample (sampling rate 1/k)")
    sr_test: int = key(0, "[new, from CKConv] SpeechCommands / CharTrajectories: test on every k-th sample; 0 = "
                       "sr_train. At another rate than sr_train the continuous kernels are resampled (no retraining)")
    num_workers: int = key(-1, "[new] DataLoader worker processes; -1 = auto (from the CPU count)")
    val_fraction: float = key(0.1, "[new] protocol=clean: fraction of the training set held out for validation")
    synthetic: bool = key(False, "[new] random tensors with the dataset's shape and classes instead of real data "
                          "(smoke tests / profiling only)")


@dataclass
class CrossResConfig:
    """Resizing inputs, and the train-at-source -> test/fine-tune-at-target protocol of run_crossres.py."""

    resize: str = key("", '"h,w" with h = w: resize inputs to h x h ("" = native size); run_crossres.py sets it '
                      "per phase")
    interpolation: str = key("bilinear", "resize interpolation", allowed=C.interpolations)
    resize_blur: bool = key(False, "Gaussian blur before resizing; not implemented, no paper run "
                            "used it", status=UNUSED)
    resize_blur_sigma: float = key(1.0, "sigma of that blur", status=UNUSED)
    blur: bool = key(False, "always blur CIFAR; not implemented, no paper run used it", status=UNUSED)
    source_res: int = key(0, "run_crossres.py: training resolution (e.g. 16)")
    target_res: int = key(0, "run_crossres.py: test / fine-tune resolution (e.g. 32)")
    finetune_epochs: int = key(100, "run_crossres.py: epochs of fine-tuning at target_res")
    eval_resolutions: List[int] = key([], "[new] run_crossres.py: evaluate one checkpoint (pretrained_params.filepath) "
                                      "at each of these resolutions, no training")


@dataclass
class OptimizerParamsConfig:
    """Optimiser options."""

    momentum: float = key(0.9, "[orig: -1, which had to be set] SGD momentum")
    nesterov: bool = key(False, "SGD Nesterov momentum")
    weight_decay: float = key(0.0, "[new] true optimizer weight decay (decoupled for AdamW); distinct from "
                              "train.weight_decay")


@dataclass
class SchedulerParamsConfig:
    """Learning-rate schedule options."""

    decay_steps: Any = key(-1, "multistep: milestone epoch(s), an int or a list; -1 = unset")
    decay_factor: float = key(-1.0, "multistep / plateau: lr is divided by it; exponential: per-epoch multiplier "
                              "(gamma); -1 = unset")
    patience: int = key(-1, "plateau: epochs without improvement of validation accuracy; -1 = unset")
    warmup_epochs: int = key(2, "[default exp.] linear warm-up epochs (per iteration) before cosine; -1 = none")


@dataclass
class TrainConfig:
    """Training."""

    do: bool = key(True, "train; False = only evaluate (a checkpoint from `pretrained` or `train.resume`)")
    augment: str = key("None", 'None | resnet (flip + padded crop; CIFAR; STL10 adds a 32 px cutout) | standard (MNIST); '
                       '"None" is a string; what each dataset allows is checked by the dataset')
    report_top5_acc: bool = key(False, "also report top-5 accuracy")
    epochs: int = key(50, "[default exp.] number of epochs")
    batch_size: int = key(64, "[default exp.] batch size (train and evaluation)")
    lr: float = key(0.01, "[default exp.] base learning rate")
    omega_0_lr_factor: float = key(1.0, "lr factor for learnable omega_0 parameters")
    mask_params_lr_factor: float = key(0.1, "[default exp.; orig: 1.0] lr factor for FlexConv mask parameters "
                                       "(paper: 0.1)")
    weight_decay: float = key(0.0, 'lambda of the original "weight decay": sum of L2 norms of the sampled '
                              "CKConv/FlexConv kernels (+ biases), added to the loss; NOT optimizer weight decay",
                              no_effect_on="Conv/SRF/baseline nets")
    mask_l2_norm: float = key(0.0, "only 0 is supported: in the original code any other value crashed (the "
                              "penalty read a mask attribute that does not exist), so no published run used it",
                              status=REJECTED)
    magnitude_reg: float = key(0.0, "unused in the original too", status=UNUSED)
    grad_clip: float = key(0.0, "clip the global gradient L2 norm to this value if > 0")
    optimizer: str = key("Adam", "optimiser (AdamW: [new])", allowed=C.optimizers)
    optimizer_params: OptimizerParamsConfig = section(OptimizerParamsConfig)
    scheduler: str = key("cosine", '[default exp.; orig: "", which crashed] "" or none = constant lr; cosine is per '
                         "iteration with eta_min 1e-6", allowed=C.schedulers, parse=C.parse_scheduler)
    scheduler_params: SchedulerParamsConfig = section(SchedulerParamsConfig)
    resume: Any = key(False, "[new] false | true (= <run dir>/checkpoints/last.pt; pass hydra.run.dir=<old run dir>) | "
                      "auto (as true, and a run whose summary.json says it finished is not retrained; the "
                      "default of experiments/reproduce.py) | path of a checkpoint or run directory")
    mixed_precision: bool = key(False, "[new] bfloat16 autocast on CPU and CUDA (float16 + loss scaling on GPUs "
                                "without bfloat16); FFT convolutions compute in float32")
    compile: Any = key(False, "[new] torch.compile the training step's model: false | true (= inductor) | "
                       "aot_eager | eager; dynamic shapes, so growing kernels do not recompile (at most 8 "
                       "recompiles per function, then it runs eagerly); evaluation stays eager",
                       allowed=C.compile_options, parse=C.parse_compile)
    channels_last: bool = key(False, "[new] 2D models: channels-last memory format for the training and evaluation "
                              "inputs and weights (for CUDA tensor cores)", no_effect_on="1D data")
    early_stop_patience: int = key(100, "[new] stop after this many epochs without a new best validation accuracy "
                                   "(original: fixed 100); -1 = never")
    limit_train_batches: int = key(-1, "[new] cap on training batches per epoch (dev / smoke runs); -1 = all")
    limit_eval_batches: int = key(-1, "[new] cap on evaluation batches per pass (dev / smoke runs); -1 = all")
    log_every: int = key(50, "[new] training steps between reads of the loss from the device (progress bar, "
                         "non-finite-loss and stop checks); a step does not wait for the device otherwise")
    plot_every: int = key(0, "[new] also draw <run dir>/figures/ every this many epochs (0 = only at the end "
                          "of the run, -1 = never); see docs/FIGURES.md")


@dataclass
class TestConfig:
    """Testing."""

    before_train: bool = key(False, "evaluate on the test set before training")
    sampling_rates: List[int] = key([], "[new] run_experiment.py train.do=False: evaluate one checkpoint "
                                    "(pretrained_params.filepath) at each of these test sampling rates (sr_test "
                                    "values: every k-th sample) and write a table and a plot; SpeechCommands / "
                                    "CharTrajectories")
    patched: bool = key(False, "segmentation only", status=UNUSED)


@dataclass
class WandbConfig:
    """Weights & Biases (optional: training never fails because W&B is unreachable)."""

    project: str = key("flexconv", "project name (the paper's runs used ckconv_vision)")
    entity: Optional[str] = key(None, "[orig: vu_tudelft_team] team / user; null = your default entity")
    dir: str = key("./wandb", "local directory for W&B files")
    mode: str = key("auto", "[new] auto = online if credentials are found, else offline; debug=True forces offline; "
                    "online without an API key, or with no W&B server answering within 15 s, logs offline "
                    "(upload later with `wandb sync`)", allowed=C.wandb_modes)


@dataclass
class PretrainedParamsConfig:
    """Weights to start from."""

    filepath: str = key("", 'checkpoint file (ours, or an original one with a "model" entry)')


@dataclass
class PretrainedWandbParamsConfig:
    """The W&B run file that pretrained_wandb=True loads."""

    filename: str = key("", "file of the run, e.g. final_model.pt (the original's) or checkpoints/best.pt (ours)")
    run_path: str = key("", "the run: entity/project/run id")


@dataclass
class ProfileConfig:
    """run_profiler.py (takes every other key as usual; needs no dataset on disk)."""

    n_batches: int = key(30, "batches to time / profile")
    directory: str = key("", 'output directory of traces; "" = the run directory')
    data_mode: str = key("fake", "fake = random inputs of the dataset's shape; dataset = batches of the training "
                         "loader", allowed=C.profile_data_modes)
    data_shape: int = key(0, "spatial size of fake inputs; 0 = the dataset's own shape")
    mode: str = key("bench", "[new] bench: time forward and forward+backward, write profile.json; profile: "
                    "torch.profiler trace and table", allowed=C.profile_modes)
    grow_masks: bool = key(False, "[new] FlexConv: set every mask to cover the whole grid first (cost of fully grown "
                           "kernels)")
    warmup_batches: int = key(5, "[new] untimed batches before timing starts")


@dataclass
class TestcaseConfig:
    """Rejected: the original's loss-trace regression checks (load/save=True is an error)."""

    load: bool = key(False, "the original's loss-trace testcases are not supported (their reference losses depend on the original "
                     "RNG streams); use a dev preset or train.limit_train_batches for smoke runs", status=REJECTED)
    save: bool = key(False, "the original's loss-trace testcases are not supported (their reference losses depend on the original "
                     "RNG streams); use a dev preset or train.limit_train_batches for smoke runs", status=REJECTED)
    epochs: int = key(1, "the original's loss-trace testcases only", status=UNUSED)
    batches: int = key(20, "the original's loss-trace testcases only", status=UNUSED)
    path: str = key("", "the original's loss-trace testcases only", status=UNUSED)


@dataclass
class PublishedResult:
    """A published number, in percent."""

    mean: Optional[float] = key(None, "published mean (percent)")
    std: Optional[float] = key(None, "published standard deviation over seeds (percent); null = not published")


@dataclass
class PaperConfig:
    """[new] What a paper preset reproduces (read by experiments/make_tables.py; no effect on a run)."""

    table: str = key("", 'the table the preset is a row of: "1", "3", "4", "6", "7", "8", "9" (the paper\'s), "ck" (the '
                     "CKConv line's sequence sets: Character Trajectories, Speech Commands) or \"dev\" (tiny MNIST-1D "
                     'runs, minutes on a CPU); "" = none (experiments/reproduce.py runs a table)')
    row: str = key("", "row of that table")
    column: str = key("", "column (Table 1: the dataset)")
    published: Dict[str, PublishedResult] = key({}, "summary.json key -> published mean/std (percent)")
    params: str = key("", "parameter count as published (e.g. 0.67M)")
    no_params: Optional[int] = key(None, "parameter count of the model this code builds (a test checks it)")
    seeds: List[int] = key([0, 1, 2], "the seeds the authors ran")
    command: str = key("", "the published command (a test checks the preset sets the same values)")


@dataclass
class Config:
    """Root of the schema: one field per top-level key."""

    net: NetConfig = section(NetConfig)
    kernel: KernelConfig = section(KernelConfig)
    conv: ConvConfig = section(ConvConfig)
    mask: MaskConfig = section(MaskConfig)
    dataset: str = key("MNIST1D", "[default exp.] dataset", allowed=C.dataset_names)
    dataset_params: DatasetParamsConfig = section(DatasetParamsConfig)
    cross_res: CrossResConfig = section(CrossResConfig)
    train: TrainConfig = section(TrainConfig)
    test: TestConfig = section(TestConfig)
    wandb: WandbConfig = section(WandbConfig)
    protocol: str = key("clean", "[new] clean: hold out dataset_params.val_fraction of the training set, select the "
                        "best epoch on it, report test accuracy at that epoch (the test set is evaluated only on "
                        "epochs that improve validation; best_test_accuracy is null); paper: train on the full "
                        "training set, select on the test set and report the best test accuracy (as the paper did). "
                        "SpeechCommands / CharTrajectories: paper = the CKConv line's 70/15/15 split of the pooled "
                        "samples (select on its validation part, report test_accuracy), clean = the dataset's own "
                        "train/test split; AddProblem / CopyMemory: clean draws a validation set",
                        allowed=C.protocols)
    device: str = key("auto", "[new value; orig: cuda] auto (CUDA if available, else CPU) | cpu | cuda | cuda:N; "
                      "cuda without CUDA is an error")
    debug: bool = key(False, "W&B offline (original meaning)")
    pretrained: bool = key(False, "load model weights from pretrained_params.filepath before training / evaluation")
    pretrained_params: PretrainedParamsConfig = section(PretrainedParamsConfig)
    pretrained_wandb: bool = key(False, "load model weights from a file of a W&B run (pretrained_wandb_params), "
                                 "downloaded through W&B's public API into <run dir>/pretrained_wandb/ (needs "
                                 "network access and W&B credentials); either format, as pretrained")
    pretrained_wandb_params: PretrainedWandbParamsConfig = section(PretrainedWandbParamsConfig)
    pretrained_strict: bool = key(True, "strict state-dict loading")
    seed: int = key(0, "random seed; -1 = draw one (the drawn value is logged)")
    deterministic: bool = key(False, "deterministic algorithms (slower)")
    comment: str = key("", "free text, logged with the run")
    profile: ProfileConfig = section(ProfileConfig)
    time: bool = key(False, "unused in the original too", status=UNUSED)
    summary: List[int] = key([0], "more than one element (the original's torchinfo input size, e.g. [64, 3, 32, 32]): "
                             "print a per-module parameter table at start")
    summary_depth: int = key(5, "depth of that table")
    testcase: TestcaseConfig = section(TestcaseConfig)
    paper: PaperConfig = section(PaperConfig)


ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)


# --- walking the schema --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyInfo:
    path: str          # dotted key, e.g. "train.lr"
    kind: str          # "section" | "list" | "dict" | "value"
    type: str
    default: Any
    doc: str
    allowed: Any       # tuple | callable | None
    parse: Any         # callable | None
    status: str = USED
    no_effect_on: str = ""


@functools.lru_cache(maxsize=None)
def schema_keys() -> tuple[KeyInfo, ...]:
    """Every key of the schema, sections included, in declaration order (fixed at import)."""
    out: list[KeyInfo] = []

    def walk(cls: type, prefix: str) -> None:
        instance = cls()
        for f in fields(cls):
            path, value = f"{prefix}{f.name}", getattr(instance, f.name)
            meta = f.metadata
            if is_dataclass(value):
                out.append(KeyInfo(path, "section", type(value).__name__, None, meta.get("doc", ""), None, None))
                walk(type(value), path + ".")
                continue
            kind = "list" if isinstance(value, list) else "dict" if isinstance(value, dict) else "value"
            type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            out.append(KeyInfo(path, kind, type_name, value, meta.get("doc", ""), meta.get("allowed"),
                               meta.get("parse"), meta.get("status", USED), meta.get("no_effect_on", "")))

    walk(Config, "")
    return tuple(out)


def iter_values(cfg: DictConfig) -> Iterator[tuple[KeyInfo, Any]]:
    """(key, value in ``cfg``) for every non-section key of the schema."""
    for info in schema_keys():
        if info.kind != "section":
            value = OmegaConf.select(cfg, info.path)
            yield info, OmegaConf.to_container(value, resolve=True) if isinstance(value, (ListConfig, DictConfig)) else value


def with_defaults(cfg: Any) -> DictConfig:
    """A complete, typed config: the schema's defaults with ``cfg`` (a dict, DictConfig or partial config, e.g.
    ``{"net": {"type": "TCN"}}``) merged on top. A key the schema does not have is an error naming it."""
    if isinstance(cfg, DictConfig) and OmegaConf.get_type(cfg) is Config:
        return cfg
    base = OmegaConf.structured(Config)
    try:
        return OmegaConf.merge(base, cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg))
    except Exception as error:  # omegaconf's ValidationError / ConfigKeyError name the key
        from .errors import ConfigError

        key = getattr(error, "full_key", None)
        raise ConfigError(f"{key}: {str(error).splitlines()[0]}" if key else str(error).splitlines()[0]) from None
