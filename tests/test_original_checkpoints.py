"""Checkpoints of the original FlexConv code: recognised by content, read safely, mapped onto our models with the
original's logits, strict about what does not fit, evaluated (also at several resolutions) and converted once.

The files are written here in the original's format and layout (``fixtures/original_layouts.json``: the exact
state dict the original code writes for each paper model) with random values; the logits of our mapped model are
compared with ``original_reference`` (the original's forward written from its description, on the original names,
in float64), not with our own layers.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

import engine.original as original_module
from ckconv import FlexConv
from ckconv.nn.mask import SIGMA_EPS, effective_sigma
from config import read_command
from engine.build import build_run_model, checkpoint_weights, input_meta, load_weights
from engine.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from engine.original import ORIGINAL_FORMAT, RULES, Rule, is_original, original_data_state
from engine.stored import original_phase, original_spec
from models import count_parameters
from original_reference import (LAYOUTS, MASK_STATES, calibrated, entries, original_state, reference_logits,
                                relative_error)

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4  # relative logit difference allowed (float32 here against float64 there: about 1e-6 in practice)
QUICK = ["dataset_params.synthetic=true", "dataset_params.num_workers=0", "train.limit_eval_batches=1",
         "train.batch_size=4", "wandb.mode=disabled", "train.plot_every=-1", "device=cpu"]


def has_mask(layout: dict) -> bool:
    return any(key.endswith(".mask_params") for key, _, _ in entries(layout))


def save_original(path: Path, state: dict, epoch=None) -> Path:
    """A checkpoint as the original's trainer writes it."""
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]},
                "lr_scheduler": {}, "epoch": epoch}, path)
    return path


def ours_from_original(layout: dict, state: dict, path: Path, overrides=()) -> torch.nn.Module:
    """Our model built from the layout's flags, with the original file's weights loaded (eval mode)."""
    spec = read_command([*layout["flags"], *overrides]).spec
    model = build_run_model(spec, input_meta(spec))
    checkpoint = load_checkpoint(save_original(path, state), original=True)
    load_weights(model, checkpoint_weights(model, checkpoint, True, str(path)), True, str(path))
    return model.eval()


def logits_difference(name: str, mask_state: str, tmp_path: Path, side: int | None = None) -> float:
    """Largest relative difference of our logits from the original's for a random file of layout ``name``;
    ``side``: images of that size instead of the layout's (the 33-tap kernels stay: cheaper, same arithmetic)."""
    layout = LAYOUTS[name]
    shape = layout["input_shape"] if side is None else [layout["input_shape"][0], side, side]
    state = calibrated(layout, original_state(layout, mask_state), input_shape=shape)
    model = ours_from_original(layout, state, tmp_path / f"{name}.pt")
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(x)
    return relative_error(ours, reference_logits(layout, state, x))


# --- the sigma floor --------------------------------------------------------------------------------------------------
def test_mask_sigma_floor_leaves_sigmas_above_eps_untouched_and_keeps_the_fix():
    sigmas = torch.tensor([-0.3, -SIGMA_EPS, SIGMA_EPS, 0.0101, 0.075, 0.1, 2.0])
    assert torch.equal(effective_sigma(sigmas), sigmas.abs())  # bit for bit: the original's numbers
    small = torch.tensor([0.0, 1e-6, -5e-4, 0.999e-3], requires_grad=True)
    floored = effective_sigma(small)
    floored.sum().backward()
    assert (floored >= SIGMA_EPS / 2).all() and torch.isfinite(small.grad).all()
    below, above = effective_sigma(torch.tensor([SIGMA_EPS * (1 - 1e-6), SIGMA_EPS * (1 + 1e-6)]))
    assert abs(float(below - above)) < 1e-8  # continuous where the floor ends
    # A FlexConv mask with sigma 0.1 is exactly the unfloored Gaussian.
    layer = FlexConv(1, 1, data_dim=2, horizon=9, mask_init_value=0.1, mask_dynamic_cropping=False)
    coords = torch.linspace(-1, 1, 9)
    expected = torch.exp(-0.5 * (coords / 0.1) ** 2)
    assert torch.equal(layer._mask([coords, coords]), expected[:, None] * expected[None, :])


# --- same logits as the original --------------------------------------------------------------------------------------
# Every layout at every mask state, at its own input size: `pytest -m slow` (about 80 s on an idle 2-core CPU: the
# float64 reference is slow on large kernels). In CI: one model of each kind - FlexNet-7 (MAGNet) as initialised and
# cropped, Gabor, the MNIST grid, 3x3 convolutions, the cross-resolution kernel scale, CIFAR ResNet-32, FlexTCNs, the
# SIREN CKTCN - and (SMALL_IMAGE_CASES) grown and non-square masks on 16x16 images, the 33-tap kernels unchanged.
QUICK_CASES = {("flexnet7_cifar10", "init"), ("flexnet7_cifar10", "crop"), ("flexnet7_gabor_cifar10", "init"),
               ("flexnet7_mnist", "init"), ("flexnet7_conv3_cifar10", "init"),
               ("crossres_flexnet7_gabor_cifar10_final", "init"), ("cifarresnet32_cifar10", "init"),
               ("flextcn4_scifar10", "init"), ("cktcn_siren_smnist", "init"), ("flextcn2_smnist", "grown"),
               ("flextcn2_smnist", "crop")}
SMALL_IMAGE_CASES = [("flexnet3_cifar10", "grown"), ("flexnet3_cifar10", "crop"), ("flexnet7_siren_cifar10", "crop")]
CASES = [pytest.param(name, state, id=f"{name}-{state}",
                      marks=[] if (name, state) in QUICK_CASES else [pytest.mark.slow])
         for name in LAYOUTS for state in MASK_STATES if state == "init" or has_mask(LAYOUTS[name])]


@pytest.mark.parametrize("name,mask_state", CASES)
def test_original_checkpoint_gives_the_original_logits(name, mask_state, tmp_path):
    assert logits_difference(name, mask_state, tmp_path) < TOLERANCE


@pytest.mark.parametrize("name,mask_state", SMALL_IMAGE_CASES)
def test_grown_and_non_square_masks_give_the_original_logits(name, mask_state, tmp_path):
    assert logits_difference(name, mask_state, tmp_path, side=16) < TOLERANCE


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_layout_maps_onto_the_model_of_its_flags_entry_for_entry(name):
    """Strict mapping of every paper model: each tensor of the file used, each entry of ours filled, and our
    model from the same flags has the original's parameter count."""
    layout = LAYOUTS[name]
    spec = read_command(layout["flags"]).spec
    model = build_run_model(spec, input_meta(spec))
    assert count_parameters(model) == layout["n_params"]
    mapped = original_module.map_original(original_state(layout), model)
    assert mapped.problems(strict=True) == "" and not mapped.notes
    assert set(mapped.state) == set(model.state_dict())


def test_the_comparison_fails_for_a_wrong_convention(tmp_path, monkeypatch):
    """The reference catches a convention mapped wrongly: mask rows swapped (2D, non-square crop), a 1D mask mean
    taken relative to the centre, kernel-net outputs read input-major."""
    def with_convert(pattern, convert):
        rules = tuple(Rule(r.pattern, r.ours, r.what, r.networks, convert, r.role) if r.pattern == pattern else r
                      for r in RULES)
        monkeypatch.setattr(original_module, "RULES", rules)

    with_convert(r"\.mask_params$", lambda p: p.flip(0))
    assert logits_difference("flexnet3_cifar10", "crop", tmp_path, side=16) > 1e-2
    with_convert(r"\.mask_params$", lambda p: p - torch.tensor([[1.0, 0.0]]))
    assert logits_difference("flextcn2_smnist", "crop", tmp_path) > 1e-2
    monkeypatch.setattr(original_module, "RULES", RULES)

    original = original_module._linear_from_1x1_conv

    def input_major(value):  # the stem's 72 outputs read as [3 inputs, 24 outputs] instead of [24, 3]
        value = original(value)
        if value.shape[0] != 72:
            return value
        return value.reshape(24, 3, *value.shape[1:]).transpose(0, 1).reshape(value.shape)

    with_convert(r"\.Kernel\.output_linear\.(weight|bias)$", input_major)
    assert logits_difference("flexnet3_cifar10", "init", tmp_path, side=16) > 1e-2


def test_njet_layers_map_by_the_published_njetnet_names(tmp_path):
    """No layout of the original's N-Jet networks exists (its srf package is private): the table maps the names of
    the published N-JetNet layer, ``alphas [F, C_in, C_out]`` and ``scales [1]`` (sigma = 2^scale in both)."""
    spec = read_command(["experiment=dev/njet_cifar10_tiny", "kernel.srf.scale=2.0"]).spec
    model = build_run_model(spec, input_meta(spec)).eval()
    generator = torch.Generator().manual_seed(0)
    ours = {key: torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
            for key, value in model.state_dict().items() if not key.endswith("_extra_state")}
    ours = {key: value.abs() + 0.5 if key.endswith("running_var") else value for key, value in ours.items()}
    original = {}
    for key, value in ours.items():  # the original's names, written out by hand
        key = re.sub(r"^stem\.0\.", "cconv1.", re.sub(r"^stem\.1\.", "norm1.", key))
        key = re.sub(r"^blocks\.(\d+)\.conv(\d)\.", r"blocks.\1.cconv\2.", key)
        key = re.sub(r"^blocks\.(\d+)\.shortcut\.", r"blocks.\1.shortcut.0.", key)
        if key.endswith(".alpha"):
            key += "s"
        elif key.endswith(".scale"):
            key, value = key + "s", value.reshape(1) * 0.3
        original[key] = value
    checkpoint = load_checkpoint(save_original(tmp_path / "njet.pt", original), original=True)
    load_weights(model, checkpoint_weights(model, checkpoint, True, "njet.pt"), True, "njet.pt")
    by_hand = build_run_model(spec, input_meta(spec)).eval()
    for key, value in ours.items():
        target = dict(by_hand.named_parameters()).get(key)
        if target is None:
            target = dict(by_hand.named_buffers())[key]
        with torch.no_grad():
            target.copy_(value * 0.3 if key.endswith(".scale") else value)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    with torch.no_grad():
        assert torch.allclose(model(x), by_hand(x), rtol=1e-5, atol=1e-6)
    assert model.stem[0].scale_sigma == 2.0  # the cross-resolution factor: from the configuration


# --- recognised by content, read safely -------------------------------------------------------------------------------
class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_original_format_is_recognised_by_content_and_read_weights_only(tmp_path):
    layout = LAYOUTS["flextcn2_smnist"]
    path = save_original(tmp_path / "orig.pt", original_state(layout), epoch=7)
    checkpoint = load_checkpoint(path, original=True)
    assert checkpoint["format"] == ORIGINAL_FORMAT and checkpoint["epoch"] == 7
    with pytest.raises(CheckpointError, match="original FlexConv code.*convert_original.py"):
        load_checkpoint(path)  # where only our format makes sense (resume, plots)
    # Not the original's format: another key, or no state dict.
    state = torch.load(path, weights_only=True)
    assert is_original(state)
    assert not is_original({**state, "extra": 1}) and not is_original({**state, "model": {}})
    torch.save({**state, "extra": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "other.pt", original=True)
    # A file that needs arbitrary unpickling is refused with one message, whatever it looks like otherwise.
    torch.save({**state, "optimizer": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"safe \(weights-only\) loading refuses"):
        load_checkpoint(tmp_path / "evil.pt", original=True)


# --- strictness -------------------------------------------------------------------------------------------------------
def test_a_file_of_another_network_is_one_message_naming_the_keys(tmp_path):
    five = original_state(LAYOUTS["flexnet5_cifar10"])
    spec = read_command(LAYOUTS["flexnet7_cifar10"]["flags"]).spec
    model = build_run_model(spec, input_meta(spec))
    checkpoint = load_checkpoint(save_original(tmp_path / "f5.pt", five), original=True)
    for strict in (True, False):
        with pytest.raises(CheckpointError) as error:
            checkpoint_weights(model, checkpoint, strict, "f5.pt")
        message = str(error.value)
        assert "\n" not in message
        assert "net.no_blocks=5 in the file, 7 here" in message and "net.no_hidden=22 in the file, 24 here" in message
        assert "of another shape" in message


def test_strict_needs_every_tensor_used_and_every_entry_filled(tmp_path, capsys):
    layout = LAYOUTS["flextcn2_smnist"]
    state = original_state(layout)
    dropped = state.pop("backbone.1.norm2.running_var")
    state["backbone.0.cconv1.Kernel.extra_scale"] = torch.ones(3)
    spec = read_command(layout["flags"]).spec
    model = build_run_model(spec, input_meta(spec))
    checkpoint = load_checkpoint(save_original(tmp_path / "o.pt", state), original=True)
    with pytest.raises(CheckpointError) as error:
        checkpoint_weights(model, checkpoint, True, "o.pt")
    message = str(error.value)
    assert "1 in the file fit nowhere in the model: backbone.0.cconv1.Kernel.extra_scale [3]" in message
    assert "1 of the model are not in the file: blocks.1.norm2.running_var [30]" in message
    assert "pretrained_strict=False" in message
    # Non-strict: what fits is loaded, the rest is said once.
    before = model.blocks[1].norm2.running_var.clone()
    load_weights(model, checkpoint_weights(model, checkpoint, False, "o.pt"), False, "o.pt")
    out = capsys.readouterr().out
    assert "Kernel.extra_scale" in out and "blocks.1.norm2.running_var" in out
    assert torch.equal(model.blocks[1].norm2.running_var, before) and dropped.shape == before.shape
    assert torch.equal(model.blocks[0].conv1.mask_params, state["backbone.0.cconv1.mask_params"])


def test_buffers_the_configuration_contradicts_are_reported(tmp_path, capsys):
    layout = LAYOUTS["flexnet3_cifar10"]
    state = original_state(layout)
    spec = read_command([*layout["flags"], "mask.threshold=0.2"]).spec
    model = build_run_model(spec, input_meta(spec))
    checkpoint = load_checkpoint(save_original(tmp_path / "o.pt", state), original=True)
    with pytest.raises(CheckpointError, match=r"mask_threshold = 0.1 in the file, mask.threshold=0.2 here"):
        checkpoint_weights(model, checkpoint, True, "o.pt")
    # A kernel grid other than the file's is what the original does after loading: said, not refused.
    spec = read_command([*layout["flags"], "conv.horizon=17"]).spec
    model = build_run_model(spec, input_meta(spec))
    checkpoint_weights(model, checkpoint, True, "o.pt")
    assert "kernels trained on a 33-tap grid are sampled on 17 taps" in capsys.readouterr().out


# --- the configuration of a file without one --------------------------------------------------------------------------
def published_command(preset: str) -> list[str]:
    text = (ROOT / "cfg" / "experiment" / f"{preset}.yaml").read_text()
    return shlex.split(re.search(r'command: "(.*)"', text).group(1).replace('\\"', '"'))


@pytest.mark.parametrize("flags", ["published", "phase"])
def test_a_cross_resolution_file_gets_the_phase_of_its_kernel_grid(flags):
    """The final checkpoint of a 16 -> 32 run: 33-tap grid, data at 32, kernel scale 0.25 from the configuration -
    from the published run_crossres.py command (the scale derived as run_crossres.py does) and from the flags the
    original recorded for that phase (conv.horizon=33 kernel.sampling_rate_norm=0.25, taken as they are)."""
    layout = LAYOUTS["crossres_flexnet7_gabor_cifar10_final"]
    command = published_command("t4_crossres_flexnet7_gabor")[2:] if flags == "published" else layout["flags"]
    spec = read_command(command, entry="run_crossres" if flags == "published" else "run_experiment").spec
    final = original_state(layout)
    assert original_phase(spec, final) == "finetune"
    phased = original_spec(spec, final)
    assert phased.model.kernel.sampling_rate_norm == 0.25 and int(phased.model.conv.horizon) == 33
    assert (phased.data.resolution or 32) == 32
    source = {key: torch.tensor([17], dtype=torch.int32) if key.endswith("train_length") else value
              for key, value in final.items()}
    assert original_phase(spec, source) == "source"
    if flags == "published":
        phased = original_spec(spec, source)
        assert phased.model.kernel.sampling_rate_norm == 1.0 and int(phased.model.conv.horizon) == 17
        assert phased.data.resolution == 16


def test_the_original_pmnist_permutation_is_recreated_from_the_seed():
    import numpy as np

    np.random.seed(2)
    assert torch.equal(original_data_state(True, 2)["permutation"], torch.from_numpy(np.random.permutation(784)))
    assert original_data_state(False, 2) == {} and original_data_state(True, -1) == {}


# --- evaluating, at several resolutions -------------------------------------------------------------------------------
def test_train_do_false_evaluates_an_original_checkpoint(tmp_path):
    from engine.experiment import run

    layout = LAYOUTS["flextcn2_smnist"]
    path = save_original(tmp_path / "orig.pt", calibrated(layout, original_state(layout)))
    summary = run(read_command([*layout["flags"], "train.do=False", "pretrained=True",
                                f"pretrained_params.filepath={path}", *QUICK]), tmp_path / "run")
    assert summary["status"] == "evaluated" and summary["no_params"] == layout["n_params"]


def test_crossres_evaluates_an_original_final_checkpoint_at_several_resolutions(tmp_path):
    from engine.crossres import run

    layout = LAYOUTS["crossres_flexnet7_gabor_cifar10_final"]
    path = save_original(tmp_path / "final.pt", original_state(layout))
    summary = run(read_command(["experiment=t4_crossres_flexnet7_gabor", "cross_res.eval_resolutions=[16,32]",
                                "pretrained=True", f"pretrained_params.filepath={path}", *QUICK],
                               entry="run_crossres"), tmp_path / "run")
    assert summary["trained_resolution"] == 32
    assert [row["kernel_grid"] for row in summary["evaluations"]] == [17, 33]


# --- convert once -----------------------------------------------------------------------------------------------------
def test_convert_takes_the_published_command_verbatim_and_the_result_needs_no_flags(tmp_path, capsys):
    import experiments.convert_original as convert
    from engine.experiment import run

    layout = LAYOUTS["flexnet7_cifar10"]
    state = calibrated(layout, original_state(layout, "init"))
    original = save_original(tmp_path / "flexnet7_seed2.pt", state)
    x = torch.randn(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    ours = tmp_path / "ours.pt"
    command = published_command("t3_cifar10_flexnet7")
    assert "device=cuda" in command and command[:2] == ["python", "run_experiment.py"]
    code = convert.main([str(original), *command, "-o", str(ours), "--inputs", str(tmp_path / "x.pt"),
                         "--outputs", str(tmp_path / "y.pt")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "kernel.sampling_rate_norm=1 from the configuration" in out
    assert relative_error(torch.load(tmp_path / "y.pt"), reference_logits(layout, state, x)) < TOLERANCE
    converted = load_checkpoint(ours)
    assert converted["format"] == CHECKPOINT_FORMAT and converted["model_spec"]["net"]["no_blocks"] == 7

    # Resumed with no model flags: a finished run, evaluated (evaluating and plotting it: the README test below).
    resumed = run(read_command([f"train.resume={ours}", *QUICK]), tmp_path / "resume")
    assert resumed["status"] == "completed" and resumed["no_params"] == layout["n_params"]


def test_convert_a_cross_resolution_final_checkpoint(tmp_path, capsys):
    import experiments.convert_original as convert

    layout = LAYOUTS["crossres_flexnet7_gabor_cifar10_final"]
    original = save_original(tmp_path / "final.pt", original_state(layout))
    ours = tmp_path / "ours.pt"
    assert convert.main([str(original), *published_command("t4_crossres_flexnet7_gabor"), "-o", str(ours)]) == 0
    out = capsys.readouterr().out
    assert "kernel.sampling_rate_norm=0.25 from the configuration" in out and "final (fine-tuned)" in out
    converted = load_checkpoint(ours)
    assert converted["crossres"]["phase"] == "finetune"
    assert converted["model_spec"]["kernel"]["sampling_rate_norm"] == 0.25
    assert int(converted["model_spec"]["conv"]["horizon"]) == 33


def test_an_imagenet_k_checkpoint_converts_and_runs_without_its_data(tmp_path, capsys):
    """Imagenet-k counts its classes from its files; without them the file's readout gives the count, and the
    converted model runs on saved inputs of the right shape."""
    import experiments.convert_original as convert

    layout = LAYOUTS["crossres_flexnet5_imagenetk_final"]
    state = calibrated(layout, original_state(layout))
    original = save_original(tmp_path / "imagenetk_final.pt", state)
    x = torch.randn(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    assert convert.main([str(original), "experiment=t7_crossres_imagenetk_flexnet5", "seed=1",
                         f"dataset_params.root={tmp_path / 'no_data_here'}", "-o", str(tmp_path / "ours.pt"),
                         "--inputs", str(tmp_path / "x.pt"), "--outputs", str(tmp_path / "y.pt")]) == 0
    assert "class count is taken from the file's readout (1000 classes)" in capsys.readouterr().out
    assert relative_error(torch.load(tmp_path / "y.pt"), reference_logits(layout, state, x)) < TOLERANCE


def test_convert_reports_a_bad_file_or_configuration_in_one_line(tmp_path, capsys):
    import experiments.convert_original as convert

    original = save_original(tmp_path / "f5.pt", original_state(LAYOUTS["flexnet5_cifar10"]))
    assert convert.main([str(original), "experiment=t3_cifar10_flexnet7", "-o", str(tmp_path / "o.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "net.no_blocks=5 in the file, 7 here" in err
    assert not (tmp_path / "o.pt").exists()
    assert convert.main([str(original), "net.no_hiden=3", "-o", str(tmp_path / "o.pt")]) == 1
    assert "net.no_hidden" in capsys.readouterr().err


# --- the documented commands ------------------------------------------------------------------------------------------
def test_the_readme_commands_for_original_checkpoints_run_on_generated_files(tmp_path, capsys):
    """The README's block of commands that need the user's files, run on generated ones (the W&B one composes)."""
    import experiments.convert_original as convert
    import experiments.plot_run as plot_run
    from engine.experiment import run

    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("**Checkpoints of the original FlexConv code**"), readme.index("## Other entry points")
    section = readme[start:end]
    block = re.search(r"^```sh\n(.*?)^```", section, re.M | re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    layout = LAYOUTS["flexnet7_cifar10"]
    save_original(tmp_path / "flexnet7_seed2.pt", calibrated(layout, original_state(layout)))
    torch.save(torch.randn(2, 3, 32, 32), tmp_path / "x.pt")
    ran = set()
    for command in commands:
        tokens = [str(tmp_path / t) if t in ("flexnet7_seed2.pt", "flexnet7_ours.pt", "x.pt", "logits.pt") else
                  t.replace("=flexnet7_seed2.pt", f"={tmp_path / 'flexnet7_seed2.pt'}")
                   .replace("=flexnet7_ours.pt", f"={tmp_path / 'flexnet7_ours.pt'}") for t in shlex.split(command)]
        script, args = tokens[1], tokens[2:]
        if script == "experiments/convert_original.py":
            assert convert.main(args) == 0, capsys.readouterr()
        elif script == "experiments/plot_run.py":
            assert plot_run.main([*args, "--out", str(tmp_path / "figures")]) == 0
        elif "pretrained_wandb=True" in args:
            assert read_command(args).spec.runtime.pretrained_wandb.filename == "final_model.pt"
        else:
            assert script == "run_experiment.py"
            summary = run(read_command([*args, *QUICK]), tmp_path / f"run{len(ran)}")
            assert summary["status"] == "evaluated" and summary["no_params"] == layout["n_params"]
        ran.add(script)
    assert ran == {"run_experiment.py", "experiments/convert_original.py", "experiments/plot_run.py"}
    assert torch.load(tmp_path / "logits.pt").shape == (2, 10)


def test_the_published_checkpoints_table_has_eight_commands_that_compose():
    text = (ROOT / "experiments" / "README.md").read_text()
    section = text[text.index("## Checkpoints of the original code"):text.index("## SLURM")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 8
    commands = [re.search(r"`(python run_experiment\.py [^`]+)`", row) for row in rows]
    assert sum(c is None for c in commands) == 3  # "the same command" for three final checkpoints
    commands = [c.group(1) for c in commands if c is not None]
    for command in commands:
        args = [a.replace("FILE", "/checkpoints/original.pt") for a in shlex.split(command)[2:]]
        spec = read_command(args).spec
        assert not spec.loop.train and spec.runtime.pretrained == "/checkpoints/original.pt"
