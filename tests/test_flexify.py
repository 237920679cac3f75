"""ckconv as a layer library for other networks: flexify (convolutions -> FlexConv), param_groups (optimiser
groups), FlexConv's mask_init_taps, and the documentation of the public API (docstrings with examples that run,
docs/LAYERS.md)."""
from __future__ import annotations

import inspect
import re
import textwrap

import pytest
import torch
import torchvision
from torch import nn

import ckconv
import ckconv.nn
from ckconv import FlexConv, flexify, flexify_plan, param_groups
from ckconv.convert import Subsample
from conftest import ROOT


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def flexconvs(model: nn.Module) -> list[FlexConv]:
    return [m for m in model.modules() if isinstance(m, FlexConv)]


def tiny_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )


# --- the claim flexify's strided conversion rests on ---------------------------------------------------------
@pytest.mark.parametrize("kernel, stride, size", [(3, 2, (16, 16)), (3, 2, (15, 17)), (5, 3, (14, 16)),
                                                  (7, 2, (32, 32)), (3, (2, 1), (9, 10))])
def test_strided_same_conv_equals_stride_1_conv_subsampled(kernel, stride, size):
    strided = nn.Conv2d(3, 4, kernel, stride=stride, padding=kernel // 2)
    dense = nn.Conv2d(3, 4, kernel, stride=1, padding=kernel // 2)
    dense.load_state_dict(strided.state_dict())
    x = torch.randn(2, 3, *size)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    expected = strided(x)
    assert torch.allclose(dense(x)[..., ::s[0], ::s[1]], expected, atol=1e-6)
    assert Subsample(s)(dense(x)).shape == expected.shape


def test_strided_same_conv1d_equals_stride_1_conv_subsampled():
    strided, dense = nn.Conv1d(2, 3, 5, stride=3, padding=2), nn.Conv1d(2, 3, 5, padding=2)
    dense.load_state_dict(strided.state_dict())
    x = torch.randn(2, 2, 31)
    assert torch.allclose(dense(x)[..., ::3], strided(x), atol=1e-6)


# --- flexify on a torchvision ResNet ------------------------------------------------------------------------
def test_flexify_resnet18_replaces_every_3x3_conv_and_keeps_the_1x1_downsamples():
    model = torchvision.models.resnet18(num_classes=10)  # random init, no download
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    three = [name for name, m in convs.items() if m.kernel_size == (3, 3)]
    ones = {name: m for name, m in convs.items() if m.kernel_size == (1, 1)}
    assert (len(three), len(ones)) == (16, 3)
    plan = flexify_plan(model)
    assert all(plan[name].startswith("replace") for name in three + ["conv1"])
    assert all(plan[name] == "keep: 1x1 convolution" for name in ones)

    assert flexify(model) is model
    modules = dict(model.named_modules())
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in model.modules())
    assert all(modules[name] is conv for name, conv in ones.items())          # the same 1x1 modules, untouched
    assert len(flexconvs(model)) == 17                                        # 16 3x3 convs + the 7x7 stem
    strided = [name for name in three + ["conv1"] if isinstance(modules[name], nn.Sequential)]
    assert strided == ["layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1", "conv1"]
    assert all(modules[name][1].stride == (2, 2) for name in strided)
    assert all(layer.bias is None for layer in flexconvs(model))              # resnet convs have no bias

    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    # Every layer starts at the kernel size it replaced, at every resolution of the network (32 .. 1 pixels).
    sizes = {name: layer.kernel_size for name, layer in model.named_modules() if isinstance(layer, FlexConv)}
    assert sizes.pop("conv1.0") == (7, 7) and set(sizes.values()) == {(3, 3)}
    assert {layer.grid_size for layer in flexconvs(model)} == {33, 9, 5, 3}

    groups = {g["name"]: g for g in param_groups(model, lr=0.01)}
    assert set(groups) == {"default", "mask"}
    assert groups["mask"]["lr"] == pytest.approx(0.001) and groups["default"]["lr"] == 0.01
    assert {id(p) for p in groups["mask"]["params"]} == {id(layer.mask_params) for layer in flexconvs(model)}
    every = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters())


# --- training a flexified network ---------------------------------------------------------------------------
def test_flexified_tiny_cnn_trains_and_its_masks_get_gradients():
    model = flexify(tiny_cnn(), horizon=17, kernel_no_hidden=16)
    assert len(flexconvs(model)) == 2 and isinstance(model[6], nn.Conv2d)      # the 1x1 conv stays
    assert model[0].bias is not None and model[3][0].bias is None             # the conv's bias, or none
    optimizer = torch.optim.Adam(param_groups(model, lr=0.01))
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if not losses:
            assert all(layer.mask_params.grad is not None and layer.mask_params.grad.abs().sum() > 0
                       for layer in flexconvs(model))
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses


def test_converted_layers_keep_the_kernel_net_biases():
    # FlexConv(bias=False) also drops the kernel-net biases: a MAGNet kernel is then 0 at its centre tap.
    conv = flexify(nn.Conv2d(4, 4, 3, padding=1, bias=False), horizon=9)
    assert conv.bias is None and all(linear.bias is not None for linear in conv.kernel_net.linears)
    conv(torch.randn(1, 4, 8, 8))
    assert conv.last_kernel[..., 1, 1].abs().max() > 0


# --- what is left alone -------------------------------------------------------------------------------------
@pytest.mark.parametrize("conv, reason", [
    (nn.Conv2d(8, 8, 3, padding=1, groups=2), "groups=2"),
    (nn.Conv2d(8, 8, 3, padding=1, groups=8), "groups=8"),
    (nn.Conv2d(8, 8, 3, padding=2, dilation=2), "dilation"),
    (nn.Conv2d(8, 8, 3), "padding"),
    (nn.Conv2d(8, 8, 4, padding=2), "kernel"),
    (nn.Conv2d(8, 8, (1, 7), padding=(0, 3)), "kernel"),
    (nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    (nn.Conv2d(8, 8, 1), "1x1"),
    (nn.Conv1d(8, 8, 3, padding=1), "causal"),
])
def test_convolutions_flexconv_cannot_stand_for_are_kept(conv, reason):
    model = nn.Sequential(conv, nn.ReLU())
    assert reason in flexify_plan(model)["0"]
    assert flexify(model)[0] is conv


def test_conv1d_is_converted_only_on_request_and_then_causal():
    model = nn.Sequential(nn.Conv1d(2, 3, 5, padding=2), nn.ReLU(), nn.Conv1d(3, 3, 3, stride=2, padding=1))
    assert flexify_plan(model, causal_1d=True) == {"0": "replace",
                                                   "2": "replace (stride (2,): FlexConv, then Subsample)"}
    flexify(model, causal_1d=True)
    assert model[0].data_dim == 1 and isinstance(model[2][1], Subsample)
    x = torch.randn(1, 2, 20)
    y = model(x)
    assert y.shape == (1, 3, 10) and model[0].kernel_size == (5,)
    x2 = x.clone()
    x2[..., 12:] += 1.0                                       # only the future of output position 11 changes
    assert torch.allclose(model[0](x2)[..., :12], model[0](x)[..., :12])


def test_flexify_shares_shared_convs_passes_kwargs_and_rejects_per_conv_arguments():
    shared = nn.Conv2d(4, 4, 3, padding=1)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    flexify(model, horizon=9, kernel_type="Gabor", use_fft=True, mask_init_taps=None)
    assert model[0] is model[2] and isinstance(model[0], FlexConv)
    assert type(model[0].kernel_net).__name__ == "GaborNet" and model[0].use_fft is True
    assert model[0].kernel_size == (1, 1)     # the paper's mask init on a 9-tap grid: 1 tap (not matched)
    model(torch.randn(1, 4, 8, 8))
    with pytest.raises(TypeError, match="bias"):
        flexify(nn.Conv2d(1, 1, 3, padding=1), bias=False)
    assert isinstance(flexify(nn.Conv2d(1, 1, 3, padding="same")), FlexConv)   # a conv as the model itself


def test_param_groups_are_the_groups_the_framework_optimiser_uses():
    from engine.optim import build_optimizer
    from engine.specs import OptimSpec

    model = nn.Sequential(FlexConv(2, 4, data_dim=2, horizon=9, kernel_type="SIREN", kernel_learn_omega_0=True))
    spec = OptimSpec(optimizer="SGD", lr=0.02, mask_params_lr_factor=0.1, omega_0_lr_factor=0.5)
    built = build_optimizer(model, spec).param_groups
    mine = param_groups(model, 0.02, mask_lr_factor=0.1, omega_0_lr_factor=0.5)
    assert [(g["name"], g["lr"], [id(p) for p in g["params"]]) for g in built] == \
        [(g["name"], g["lr"], [id(p) for p in g["params"]]) for g in mine]
    assert [g["name"] for g in mine] == ["default", "mask", "omega_0"]


# --- FlexConv(mask_init_taps=...) ---------------------------------------------------------------------------
def test_mask_init_taps_sets_the_initial_crop_at_any_grid():
    assert FlexConv(1, 1, data_dim=2, horizon=33, mask_init_taps=7).kernel_size == (7, 7)     # at construction
    for size in (1, 4, 8, 16, 31, 64):
        layer = FlexConv(1, 1, data_dim=2, horizon="same", mask_init_taps=3)
        assert layer(torch.randn(1, 1, size, size)).shape == (1, 1, size, size)
        assert layer.kernel_size == (3, 3)
    layer = FlexConv(1, 1, data_dim=1, horizon="same", mask_init_taps=4)
    layer(torch.randn(1, 1, 50))
    assert layer.kernel_size == (4,)
    for bad in (0, 2, True, 3.0):
        with pytest.raises(ValueError, match="mask_init_taps"):
            FlexConv(1, 1, data_dim=2, mask_init_taps=bad)
    with pytest.raises(ValueError, match="mask_init_taps"):
        FlexConv(1, 1, data_dim=2, mask_use=False, mask_init_taps=3)


def test_a_loaded_state_dict_takes_precedence_over_mask_init_taps():
    trained = FlexConv(1, 1, data_dim=2, horizon="same")
    trained(torch.randn(1, 1, 16, 16))
    with torch.no_grad():
        trained.mask_params[:, 1] = 0.3
    fresh = FlexConv(1, 1, data_dim=2, horizon="same", mask_init_taps=3)
    fresh.load_state_dict(trained.state_dict())
    fresh(torch.randn(1, 1, 16, 16))
    assert torch.equal(fresh.mask_params, trained.mask_params) and fresh.kernel_size == (11, 11)


# --- documentation of the public API ------------------------------------------------------------------------
def public_objects():
    seen, found = set(), []
    for module in (ckconv, ckconv.nn):
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                found.append((name, obj))
    return found


def example_of(obj) -> str:
    match = re.search(r"Example::\n\n((?:[ \t]+\S.*\n?|\s*\n)+)", inspect.getdoc(obj) or "")
    assert match, f"{obj.__qualname__} has no 'Example::' block"
    return textwrap.dedent(match.group(1))


def test_every_public_name_has_a_docstring_with_an_example_and_a_section_in_layers_md():
    layers_md = (ROOT / "docs" / "LAYERS.md").read_text()
    headings = set(re.findall(r"^#+ `([A-Za-z_][A-Za-z0-9_.]*)`", layers_md, flags=re.M))
    for name in ckconv.__all__:
        doc = inspect.getdoc(getattr(ckconv, name)) or ""
        assert "Example" in doc, f"ckconv.{name} has no example in its docstring"
        assert name in headings, f"ckconv.{name} has no section in docs/LAYERS.md"
    for name, obj in public_objects():
        assert "Example" in (inspect.getdoc(obj) or ""), f"ckconv.nn.{name} has no example in its docstring"


@pytest.mark.parametrize("name, obj", public_objects(), ids=[name for name, _ in public_objects()])
def test_docstring_examples_run(name, obj):
    namespace = {"torch": torch, "torchvision": torchvision, "ckconv": ckconv}
    namespace.update({n: getattr(ckconv.nn, n) for n in ckconv.nn.__all__})
    namespace.update({n: getattr(ckconv, n) for n in ckconv.__all__})
    exec(compile(example_of(obj), f"<example of {name}>", "exec"), namespace)
