"""Tests of the ``models`` package: registry, model specs, architectures, parameter counts.

Forward/backward runs use tiny widths and inputs (C=4, 8x8 images, length-16 sequences); the
paper-size models are only built to count their parameters.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: repo root on path

import models  # noqa: E402
from models import (ConvSpec, KernelSpec, MaskSpec, ModelSpec, NetSpec, build_model, count_parameters,  # noqa: E402
                    kernel_sizes, list_models, register_model)
from models.widths import block_factors, block_widths  # noqa: E402

torch.set_num_threads(2)

# ---------------------------------------------------------------------------------------------
# Spec helpers


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` on top, section by section (lists are replaced, not merged)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spec_dict(net_type: str = "ResNet", conv_type: str = "FlexConv", **overrides) -> dict:
    """Every field of a model spec as nested dicts (paper recipe: FlexConv + MAGNet 32x3, gaussian mask 0.075).

    ``overrides`` are nested dicts per section, e.g. ``net={"no_hidden": 4}``.
    """
    base = {
        "net": {"type": net_type, "no_hidden": 24, "no_blocks": 7, "dropout": 0.2,
                "norm": "BatchNorm", "nonlinearity": "ReLU",
                "block_width_factors": [1.0, 2, 1.5, 3, 2.0, 2]},
        "conv": {"type": conv_type, "horizon": 33, "use_fft": False, "bias": True,
                 "padding": "same", "stride": 1},
        "kernel": {"type": "MAGNet", "no_hidden": 32, "no_layers": 3, "input_scale": 25.6,
                   "omega_0": 30.0, "learn_omega_0": False, "weight_norm": False, "steerable": False,
                   "init_spatial_value": 1.0, "bias_init": None, "norm": "", "activ_function": "",
                   "sampling_rate_norm": 1.0, "srf_scale": 0.0},
        "mask": {"use": True, "type": "gaussian", "init_value": 0.075, "threshold": 0.1,
                 "dynamic_cropping": True},
    }
    return merged(base, overrides)


def make_spec(net_type: str = "ResNet", conv_type: str = "FlexConv", **overrides) -> ModelSpec:
    """A complete :class:`ModelSpec` (see :func:`spec_dict`)."""
    return ModelSpec.from_dict(spec_dict(net_type, conv_type, **overrides))


def tiny_spec(net_type: str, conv_type: str, data_dim: int, **overrides) -> ModelSpec:
    """Small widths and kernel nets for fast forward/backward tests."""
    horizon = {"Conv": 3 if data_dim == 2 else 5}.get(conv_type, 17 if data_dim == 2 else "same")
    tiny = spec_dict(
        net_type, conv_type,
        net={"no_hidden": 4, "no_blocks": 2, "dropout": 0.1, "block_width_factors": [1.0, 1, 2.0, 1]},
        conv={"horizon": horizon},
        kernel={"no_hidden": 8, "no_layers": 2},
    )
    return ModelSpec.from_dict(merged(tiny, overrides))


def tiny_input(data_dim: int, batch: int = 2, channels: int = 3) -> torch.Tensor:
    shape = (batch, channels, 8, 8) if data_dim == 2 else (batch, channels, 16)
    return torch.randn(*shape)


# Which (net.type, conv.type, data_dim) combinations are meant to work; every other combination
# of a registered model must raise a ValueError. CIFAR ResNets ignore conv.type (tested once).
CONV_TYPES = ("FlexConv", "CKConv", "Conv", "SRF")
SUPPORTED = {
    "ResNet": {2: {"FlexConv", "CKConv", "Conv", "SRF"}, 1: {"FlexConv", "CKConv", "Conv"}},
    "TCN": {1: {"FlexConv", "CKConv", "Conv"}},
}
CIFAR_RESNETS = ["CIFARResNet20", "CIFARResNet32", "CIFARResNet44", "CIFARResNet56", "CIFARResNet110"]
FIXED_BASELINES = ("CIFARResNet", "OriginalResnet")  # image models that ignore conv.type


def registry_cases():
    cases = []
    for name in list_models():
        for dim in (1, 2):
            conv_types = ("Conv",) if name.startswith(FIXED_BASELINES) else CONV_TYPES
            for conv in conv_types:
                if name.startswith(FIXED_BASELINES):
                    ok = dim == 2
                else:
                    ok = conv in SUPPORTED.get(name, {}).get(dim, set())
                cases.append(pytest.param(name, conv, dim, ok, id=f"{name}-{conv}-{dim}d"))
    return cases


def forward_backward(model: torch.nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    model.train()
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out, torch.arange(x.shape[0]) % num_classes)
    loss.backward()
    return out


def assert_all_grads(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    # A gradient that is exactly zero everywhere means the parameter does not influence the loss
    # (e.g. a kernel cropped to the single centre tap): the tiny inputs are chosen to avoid that.
    zero = [n for n, p in model.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0]
    assert not zero, f"parameters with an all-zero gradient: {zero}"


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_lists_original_net_types():
    assert set(list_models()) >= {"ResNet", "TCN", *CIFAR_RESNETS}


def test_unknown_model_lists_registered_names():
    with pytest.raises(ValueError) as err:
        build_model(make_spec("NoSuchNet"), 2, 3, 10)
    assert "NoSuchNet" in str(err.value)
    for name in list_models():
        assert name in str(err.value)


def test_register_model_rejects_duplicates_and_registers_new():
    with pytest.raises(ValueError, match="already registered"):
        register_model("ResNet")(lambda *a: None)

    name = "_TestOnlyLinear"
    if name not in list_models():
        @register_model(name)
        def _build(spec, data_dim, in_channels, num_classes):
            return torch.nn.Linear(in_channels, num_classes)
    assert isinstance(build_model(make_spec(name), 1, 3, 5), torch.nn.Linear)
    models.registry._REGISTRY.pop(name)  # keep the registry-parametrised tests clean


@pytest.mark.parametrize("section,key,value,allowed", [
    ("conv", "type", "Conv3x", ["FlexConv", "CKConv", "Conv", "SRF"]),
    ("net", "norm", "InstanceNorm", ["BatchNorm", "LayerNorm"]),
    ("net", "nonlinearity", "Tanh", ["ReLU", "LeakyReLU"]),
])
@pytest.mark.parametrize("net_type,dim", [("ResNet", 2), ("TCN", 1)])
def test_bad_names_are_reported(section, key, value, allowed, net_type, dim):
    spec = tiny_spec(net_type, "Conv", dim, **{section: {key: value}})
    with pytest.raises(ValueError) as err:
        build_model(spec, dim, 3, 10)
    assert repr(value) in str(err.value)
    for name in allowed:
        assert name in str(err.value)


@pytest.mark.parametrize("net_type,conv,dim,ok", registry_cases())
def test_every_model_and_conv_type_trains_or_refuses(net_type, conv, dim, ok):
    torch.manual_seed(0)
    spec = tiny_spec(net_type, conv, dim)
    if not ok:
        with pytest.raises(ValueError):
            build_model(spec, dim, 3, 10)
        return
    model = build_model(spec, dim, 3, 10)
    out = forward_backward(model, tiny_input(dim), 10)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert_all_grads(model)


# ---------------------------------------------------------------------------------------------
# Variants: kernel nets, norms, nonlinearities, batch size 1


@pytest.mark.parametrize("kernel", [
    {"type": "MAGNet"}, {"type": "MAGNet", "steerable": True}, {"type": "Gabor"}, {"type": "Fourier"},
    {"type": "SIREN", "learn_omega_0": True}, {"type": "SIREN", "weight_norm": True},
    {"type": "nSIREN"}, {"type": "MLP", "no_layers": 3, "activ_function": "ReLU", "norm": ""},
])
@pytest.mark.parametrize("net_type,conv,dim", [
    ("ResNet", "FlexConv", 2), ("ResNet", "CKConv", 2), ("TCN", "FlexConv", 1),
])
def test_kernel_types(kernel, net_type, conv, dim):
    if kernel.get("steerable") and dim == 1:
        pytest.skip("steerable MAGNet is 2D only")
    torch.manual_seed(0)
    model = build_model(tiny_spec(net_type, conv, dim, kernel=kernel), dim, 3, 10)
    out = forward_backward(model, tiny_input(dim), 10)
    assert torch.isfinite(out).all()
    assert_all_grads(model)


@pytest.mark.parametrize("norm", ["BatchNorm", "LayerNorm"])
@pytest.mark.parametrize("act", ["ReLU", "LeakyReLU", "GELU", "SiLU"])
@pytest.mark.parametrize("net_type,dim", [("ResNet", 2), ("TCN", 1)])
def test_norms_and_nonlinearities(norm, act, net_type, dim):
    torch.manual_seed(0)
    spec = tiny_spec(net_type, "Conv", dim, net={"norm": norm, "nonlinearity": act})
    model = build_model(spec, dim, 3, 10)
    out = forward_backward(model, tiny_input(dim), 10)
    assert torch.isfinite(out).all()
    assert_all_grads(model)
    if norm == "LayerNorm":
        norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
        assert norms and all(m.num_groups == 1 and m.eps == 1e-12 for m in norms)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("net_type,conv,dim", [
    ("ResNet", "FlexConv", 2), ("ResNet", "Conv", 2), ("ResNet", "Conv", 1), ("TCN", "Conv", 1),
    ("CIFARResNet20", "Conv", 2),
])
def test_batch_size_one(net_type, conv, dim):
    """The original FlexNet squeezed the batch dim away for B=1; ours keeps ``[1, classes]``."""
    model = build_model(tiny_spec(net_type, conv, dim), dim, 3, 10).eval()
    with torch.no_grad():
        assert model(tiny_input(dim, batch=1)).shape == (1, 10)
        assert model(tiny_input(dim, batch=1)).shape == (1, 10)


# ---------------------------------------------------------------------------------------------
# Architecture details


def test_flexnet_structure_and_output_init():
    torch.manual_seed(0)
    model = build_model(make_spec("ResNet", "Conv", conv={"horizon": 3}), 2, 3, 10)
    widths = [b.conv1.out_channels for b in model.blocks]
    assert widths == [24, 24, 36, 36, 36, 48, 48]
    shortcuts = [type(b.shortcut).__name__ for b in model.blocks]
    assert shortcuts == ["Identity", "Identity", "Conv2d", "Identity", "Identity", "Conv2d", "Identity"]
    assert model.blocks[2].shortcut.bias is not None
    out = model.out_layer
    assert out.kernel_size == (1, 1) and out.in_channels == 48
    assert torch.all(out.bias == 0)
    # kaiming-normal fan-in (gain sqrt 2): std = sqrt(2 / 48)
    assert abs(out.weight.std().item() - (2 / 48) ** 0.5) < 0.05


def test_tcn_structure_and_readout_init():
    torch.manual_seed(0)
    model = build_model(make_spec("TCN", "Conv", net={"no_hidden": 30, "no_blocks": 2,
                                                   "block_width_factors": [0.0]},
                                 conv={"horizon": 5}), 1, 1, 10)
    assert [b.conv1.in_channels for b in model.blocks] == [1, 30]
    assert isinstance(model.out_layer, torch.nn.Linear)
    assert torch.all(model.out_layer.bias == 0)
    assert abs(model.out_layer.weight.std().item() - 0.01) < 0.003


@pytest.mark.parametrize("net_type,conv", [("TCN", "Conv"), ("TCN", "FlexConv"), ("TCN", "CKConv"),
                                           ("ResNet", "Conv"), ("ResNet", "FlexConv")])
def test_1d_networks_are_causal(net_type, conv):
    """Changing the input at step t must not change any output before t (eval mode)."""
    torch.manual_seed(0)
    model = build_model(tiny_spec(net_type, conv, 1), 1, 3, 10).eval()
    features = model.blocks if net_type == "TCN" else torch.nn.Sequential(model.stem, model.blocks)
    x = tiny_input(1)
    x2 = x.clone()
    x2[:, :, 10:] += 1.0
    with torch.no_grad():
        y, y2 = features(x), features(x2)
    assert torch.allclose(y[..., :10], y2[..., :10], atol=1e-5)
    assert not torch.allclose(y[..., 10:], y2[..., 10:])


def test_plain_conv_1d_is_causal_with_last_tap_on_current_step():
    from models.layers import CausalConv1d

    conv = CausalConv1d(1, 1, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.0, 0.0, 1.0]]]))
    x = torch.arange(5.0).view(1, 1, 5)
    assert torch.equal(conv(x), x)


def test_cifar_resnet_structure():
    model = build_model(make_spec("CIFARResNet20"), 2, 3, 10)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.layers(torch.nn.functional.relu(model.bn1(model.conv1(x)))).shape == (2, 64, 8, 8)
    # option A: no parameters in shortcuts
    assert all(sum(p.numel() for p in b.shortcut.parameters()) == 0 for b in model.layers)


def test_kernel_sizes_lists_flexconv_layers():
    torch.manual_seed(0)
    model = build_model(tiny_spec("ResNet", "FlexConv", 2), 2, 3, 10)
    with torch.no_grad():
        model.eval()(tiny_input(2))
    sizes = kernel_sizes(model)
    assert len(sizes) == 1 + 2 * 2  # stem + two convs per block
    assert all(len(s) == 2 and all(isinstance(k, int) and k >= 1 for k in s) for s in sizes.values())
    # Paper setting (horizon 33, mask sigma 0.075): every FlexConv starts 5x5, N-Jet 7x7.
    flexnet3 = build_model(make_spec("ResNet", "FlexConv", **FLEXNET3), 2, 3, 10)
    assert set(kernel_sizes(flexnet3).values()) == {(5, 5)} and len(kernel_sizes(flexnet3)) == 7
    njet = build_model(make_spec("ResNet", "SRF", **FLEXNET3), 2, 3, 10)
    assert set(kernel_sizes(njet).values()) == {(7, 7)}
    # horizon "same" is resolved at the first forward: unknown until then.
    seq = build_model(tiny_spec("TCN", "FlexConv", 1), 1, 3, 10)
    assert set(kernel_sizes(seq).values()) == {None}
    assert kernel_sizes(build_model(make_spec("CIFARResNet20"), 2, 3, 10)) == {}
    assert kernel_sizes(build_model(tiny_spec("ResNet", "Conv", 2), 2, 3, 10)) == {}


# ---------------------------------------------------------------------------------------------
# Model specs and width schedule


def test_block_width_schedule():
    assert block_factors([1.0, 2, 1.5, 3, 2.0, 2], 7) == [1, 1, 1.5, 1.5, 1.5, 2, 2]
    assert block_factors([0.0], 4) == [1.0] * 4
    assert block_widths(22, [1, 1, 1.5, 2, 2, 2], 5) == [22, 33, 33, 44, 44]
    assert block_widths(24, [1, 1, 1.5, 1, 2, 1], 3) == [24, 36, 48]
    with pytest.raises(ValueError, match="no_blocks=6"):
        block_factors([1.0, 2, 1.5, 3, 2.0, 2], 6)
    with pytest.raises(ValueError, match="pairs"):
        block_factors([1.0, 2, 1.5], 3)
    with pytest.raises(ValueError, match="no_blocks"):
        build_model(tiny_spec("ResNet", "Conv", 2, net={"no_blocks": 3}), 2, 3, 10)


def test_partial_spec_takes_the_spec_defaults_and_unknown_fields_fail():
    model = build_model({"net": {"type": "ResNet", "no_hidden": 4, "no_blocks": 1}, "conv": {"type": "Conv",
                                                                                       "horizon": "5"}}, 2, 3, 10)
    assert model.stem[0].kernel_size == (5, 5)  # "5" from YAML is kernel size 5
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="net.no_hiden"):
        build_model({"net": {"no_hiden": 4}}, 1, 2, 3)
    with pytest.raises(ValueError, match="net.norm"):
        build_model({"net": {"type": "TCN", "norm": "Batch"}}, 1, 2, 3)
    with pytest.raises(ValueError, match="horizon"):
        build_model(tiny_spec("ResNet", "Conv", 2, conv={"horizon": "same"}), 2, 3, 10)


def leaves(value, prefix=""):
    """``{dotted name: (value, type)}`` of a nested dict: equality that also tells 1 from 1.0 and True from 1."""
    if isinstance(value, dict):
        return {key: leaf for name, item in value.items() for key, leaf in leaves(item, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): (value, type(value))}


def test_spec_defaults_are_the_default_configs():
    """``ModelSpec()`` is the model of the default composed config, so the two sets of defaults cannot drift apart
    (nor can a partial spec's defaults differ from the config's)."""
    from config import compose_config, model_spec

    from_config = model_spec(compose_config([]))
    assert ModelSpec() == from_config
    assert leaves(ModelSpec().to_dict()) == leaves(from_config.to_dict())


def test_spec_round_trips_through_plain_dicts_and_unknown_fields_fail():
    from config import compose_config, model_spec

    spec = model_spec(compose_config(["experiment=t3_cifar10_flexnet7"]))
    assert spec.net.type == "ResNet" and spec.conv.horizon == 33 and spec.net.no_blocks == 7
    stored = spec.to_dict()
    assert stored["net"]["block_width_factors"] == [1.0, 2.0, 1.5, 3.0, 2.0, 2.0]  # plain values (a checkpoint's)
    assert ModelSpec.from_dict(stored) == spec
    assert leaves(ModelSpec.from_dict(stored).to_dict()) == leaves(stored)
    # Field names are the config keys', except kernel.srf.scale (kernel.srf_scale); sections left out keep defaults.
    assert ModelSpec.from_dict({"net": {"type": "TCN"}, "conv": {"horizon": 33}, "kernel": {"srf_scale": 1.0},
                                "mask": {"use": False}}) == ModelSpec(
        net=NetSpec(type="TCN"), conv=ConvSpec(horizon=33), kernel=KernelSpec(srf_scale=1.0),
        mask=MaskSpec(use=False))
    with pytest.raises(ValueError, match=r"kernel\.no_hiden"):
        ModelSpec.from_dict({"kernel": {"no_hiden": 8}})
    with pytest.raises(ValueError, match="optim"):
        ModelSpec.from_dict({**stored, "optim": {}})
    with pytest.raises(ValueError, match=r"kernel\.srf"):  # the config's spelling is not a spec field
        ModelSpec.from_dict({"kernel": {"srf": {"scale": 0.0}}})


@pytest.mark.parametrize("experiment,expected", [("t3_cifar10_flexnet7", 671_650), ("t1_smnist_flextcn2", 105_548),
                                                 ("t3_cifar10_resnet32", 464_154)])
def test_paper_presets_build_the_original_models(experiment, expected):
    """The config's preset -> model spec -> model gives the parameter count of the original (as in PARAM_COUNTS)."""
    from config import compose_config, run_spec

    spec = run_spec(compose_config([f"experiment={experiment}"]))
    meta = spec.data.meta()
    assert count_parameters(build_model(spec.model, meta.data_dim, meta.in_channels, meta.num_classes)) == expected


# ---------------------------------------------------------------------------------------------
# Parameter counts of the original code

FLEXNET3 = {"net": {"no_hidden": 24, "no_blocks": 3, "block_width_factors": [1.0, 1, 1.5, 1, 2.0, 1]}}
FLEXNET5 = {"net": {"no_hidden": 22, "no_blocks": 5, "block_width_factors": [1.0, 1, 1.5, 2, 2.0, 2]}}
FLEXNET7 = {}  # make_spec's default net is FlexNet-7
SIREN = {"type": "SIREN", "omega_0": 30.0}


def tcn(blocks, hidden=30, conv="FlexConv", **kernel):
    return ("TCN", conv, {"net": {"no_hidden": hidden, "no_blocks": blocks, "block_width_factors": [0.0],
                                  "dropout": 0.1},
                          "conv": {"horizon": "same", "use_fft": True}, "kernel": kernel})


# (id, (net.type, conv.type, overrides), data_dim, in_channels, num_classes, expected)
PARAM_COUNTS = [
    ("FlexNet-3 CIFAR10", ("ResNet", "FlexConv", FLEXNET3), 2, 3, 10, 277_090),
    ("FlexNet-5 CIFAR10", ("ResNet", "FlexConv", FLEXNET5), 2, 3, 10, 454_046),
    ("FlexNet-7 CIFAR10", ("ResNet", "FlexConv", FLEXNET7), 2, 3, 10, 671_650),
    ("FlexNet-7 MNIST", ("ResNet", "FlexConv", {"conv": {"horizon": 29}}), 2, 1, 10, 670_066),
    ("FlexNet-5 ImageNet32", ("ResNet", "FlexConv", FLEXNET5), 2, 3, 1000, 498_596),
    ("FlexNet-7 Conv k=3", ("ResNet", "Conv", {"conv": {"horizon": 3}}), 2, 3, 10, 169_990),
    ("FlexNet-7 Conv k=33", ("ResNet", "Conv", {"conv": {"horizon": "33"}}), 2, 3, 10, 19_998_790),
    ("FlexNet-7 N-Jet", ("ResNet", "SRF", {"net": {"no_hidden": 38}}), 2, 3, 10, 698_503),
    ("FlexNet-5 N-Jet ImageNet-k", ("ResNet", "SRF", {"net": {**FLEXNET5["net"], "no_hidden": 32}}),
     2, 3, 1000, 460_099),
    ("CKCNN-7 SIREN", ("ResNet", "CKConv", {"kernel": SIREN}), 2, 3, 10, 627_910),
    ("CKCNN-7 MAGNet", ("ResNet", "CKConv", {}), 2, 3, 10, 671_590),
    ("FlexNet-7 SIREN", ("ResNet", "FlexConv", {"kernel": SIREN}), 2, 3, 10, 627_970),
    ("FlexNet-7 MFN-Gabor", ("ResNet", "FlexConv", {"kernel": {"type": "Gabor"}}), 2, 3, 10, 669_730),
    ("FlexNet-7 MFN-Fourier", ("ResNet", "FlexConv", {"kernel": {"type": "Fourier"}}), 2, 3, 10, 663_970),
    ("FlexTCN-2 sMNIST", tcn(2), 1, 1, 10, 105_548),
    ("FlexTCN-4 sMNIST", tcn(4), 1, 1, 10, 239_436),
    ("FlexTCN-6 sMNIST", tcn(6), 1, 1, 10, 373_324),
    ("FlexTCN-2 sCIFAR10", tcn(2), 1, 3, 10, 107_588),
    ("FlexTCN-4 sCIFAR10", tcn(4), 1, 3, 10, 241_476),
    ("FlexTCN-6 sCIFAR10", tcn(6), 1, 3, 10, 375_364),
    ("FlexTCN-2 npCIFAR10", tcn(2), 1, 96, 10, 202_448),
    ("FlexTCN-4 npCIFAR10", tcn(4), 1, 96, 10, 336_336),
    ("FlexTCN-6 npCIFAR10", tcn(6), 1, 96, 10, 470_224),
    ("CKTCN MAGNet sMNIST", tcn(2, conv="CKConv"), 1, 1, 10, 105_540),
    ("CKTCN MAGNet sCIFAR10", tcn(2, conv="CKConv"), 1, 3, 10, 107_580),
    ("CKTCN SIREN sMNIST", tcn(2, conv="CKConv", **SIREN), 1, 1, 10, 95_300),
    ("CKTCN SIREN sCIFAR10", tcn(2, conv="CKConv", **SIREN), 1, 3, 10, 97_340),
    ("CKTCN SIREN+WN sMNIST", tcn(2, conv="CKConv", **SIREN, weight_norm=True), 1, 1, 10, 98_286),
    ("CKTCN-Big SIREN sMNIST", tcn(2, hidden=100, conv="CKConv", **SIREN), 1, 1, 10, 1_000_190),
    ("CKTCN-Big SIREN+WN sMNIST", tcn(2, hidden=100, conv="CKConv", **SIREN, weight_norm=True),
     1, 1, 10, 1_030_546),
    ("CIFARResNet20", ("CIFARResNet20", "Conv", {}), 2, 3, 10, 269_722),
    ("CIFARResNet32", ("CIFARResNet32", "Conv", {}), 2, 3, 10, 464_154),
    ("CIFARResNet44", ("CIFARResNet44", "Conv", {}), 2, 3, 10, 658_586),
    ("CIFARResNet32 1000 classes", ("CIFARResNet32", "Conv", {}), 2, 3, 1000, 528_504),
    # The STL-10 baselines (Table 9): torchvision's ResNet layout (ResNet-10: one block per stage).
    ("OriginalResnet10 STL-10", ("OriginalResnet10", "Conv", {}), 2, 3, 10, 4_910_922),
    ("OriginalResnet18 STL-10", ("OriginalResnet18", "Conv", {}), 2, 3, 10, 11_181_642),
]


@pytest.mark.parametrize("spec,data_dim,in_channels,num_classes,expected",
                         [pytest.param(*row[1:], id=row[0]) for row in PARAM_COUNTS])
def test_parameter_counts_match_original(spec, data_dim, in_channels, num_classes, expected):
    net_type, conv, overrides = spec
    model = build_model(make_spec(net_type, conv, **copy.deepcopy(overrides)), data_dim, in_channels, num_classes)
    assert count_parameters(model) == expected
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_original_resnets_are_torchvision_resnets():
    """Same parameter names, shapes and count as torchvision's ResNets (the original's STL-10 baselines)."""
    torchvision = pytest.importorskip("torchvision")
    ours = build_model(make_spec("OriginalResnet18", "Conv"), 2, 3, 10).state_dict()
    theirs = torchvision.models.resnet18(num_classes=10).state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == [(k, tuple(v.shape)) for k, v in theirs.items()]
    model = build_model(make_spec("OriginalResnet10", "Conv"), 2, 3, 10)
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert model(torch.randn(2, 3, 96, 96)).shape == (2, 10)   # STL-10 images
