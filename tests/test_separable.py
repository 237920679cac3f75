"""SeparableFlexConv: a depthwise continuous kernel (one per input channel, FlexConv's mask and cropping)
followed by a 1x1 channel mix. Shapes, gradients, spatial == FFT, causality, the eval cache, resolution
changes, state, parameter counts, regularisers, optimiser tags, config and model building."""
import pytest
import torch

from ckconv import FlexConv, SeparableFlexConv, anti_aliasing_penalty, kernel_norm_penalty
from ckconv.nn import functional as Fn
from ckconv.nn import group_parameters_by_tag
from ckconv.nn.kernelnets import KERNEL_TYPES


def n_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def long_mask(layer, sigmas=(0.3, 0.5)):
    """Widen the mask (non-square in 2D) so the tests see a kernel of many taps."""
    with torch.no_grad():
        layer.mask_params[:, 1] = torch.tensor(sigmas[:layer.data_dim])
    return layer


def make(data_dim, c_in=3, c_out=4, **kwargs):
    horizon = 33 if data_dim == 2 else "same"
    return SeparableFlexConv(c_in, c_out, data_dim=data_dim, horizon=horizon, **kwargs)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- shapes and the equivalent dense layer -------------------------------------------------------------
@pytest.mark.parametrize("data_dim, shape", [(1, (2, 3, 50)), (2, (2, 3, 12, 13))])
def test_shapes_and_depthwise_kernel(data_dim, shape):
    layer, dense = make(data_dim), FlexConv(3, 4, data_dim=data_dim, horizon=33 if data_dim == 2 else "same")
    x = torch.randn(*shape)
    y = layer(x)
    assert y.shape == (shape[0], 4, *shape[2:])
    assert layer.kernel_channels == (3, 1)
    assert layer.last_kernel.shape == (3, 1, *layer.kernel_size)
    dense(x)
    assert layer.kernel_size == dense.kernel_size  # FlexConv's initial crop (5 x 5 on a 33 x 33 grid)
    assert layer.dense_kernel().shape == (4, 3, *layer.kernel_size)


@pytest.mark.parametrize("data_dim, shape", [(1, (2, 3, 41)), (2, (2, 3, 11, 14))])
def test_equals_dense_convolution_with_its_dense_kernel(data_dim, shape):
    layer = long_mask(make(data_dim))
    x = torch.randn(*shape)
    y = layer(x)
    assert rel_err(y, Fn.convolve(x, layer.dense_kernel(), layer.bias, False)) < 1e-5


# --- spatial == FFT ------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [15, 16, 33, 100])
@pytest.mark.parametrize("k", [1, 6, 31])
def test_depthwise_causal_fft_matches_spatial(length, k):
    x, kernel = torch.randn(2, 3, length), torch.randn(3, 1, k)
    assert rel_err(Fn.causal_fftconv1d(x, kernel, depthwise=True), Fn.causal_conv1d(x, kernel, depthwise=True)) < 1e-4


@pytest.mark.parametrize("size", [(15, 15), (16, 16), (17, 12)])
@pytest.mark.parametrize("kernel_size", [(3, 3), (5, 9), (33, 33)])
def test_depthwise_fft2d_matches_spatial(size, kernel_size):
    x, kernel = torch.randn(2, 3, *size), torch.randn(3, 1, *kernel_size)
    assert rel_err(Fn.fftconv2d_same(x, kernel, depthwise=True), Fn.conv2d_same(x, kernel, depthwise=True)) < 1e-4


def test_depthwise_is_a_diagonal_dense_convolution_and_checks_its_layout():
    x, kernel = torch.randn(2, 3, 20), torch.randn(3, 1, 5)
    diagonal = torch.zeros(3, 3, 5)
    diagonal[range(3), range(3)] = kernel[:, 0]
    assert rel_err(Fn.convolve(x, kernel, None, True, depthwise=True), Fn.causal_conv1d(x, diagonal)) < 1e-5
    with pytest.raises(ValueError, match=r"\[3, 1, \*taps\]"):
        Fn.convolve(x, torch.randn(3, 3, 5), None, True, depthwise=True)


@pytest.mark.parametrize("data_dim, shape", [(1, (2, 3, 50)), (1, (2, 3, 51)), (2, (2, 3, 21, 20)),
                                             (2, (2, 3, 16, 17))])
def test_layer_spatial_fft_and_auto_agree(data_dim, shape):
    spatial = long_mask(make(data_dim, use_fft=False))
    x = torch.randn(*shape)
    expected = spatial(x)
    for use_fft in (True, "auto"):
        other = make(data_dim, use_fft=use_fft)
        other.load_state_dict(spatial.state_dict())
        assert rel_err(other(x), expected) < 1e-4, use_fft


# --- causality and gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("use_fft", [False, True])
def test_causal_in_1d(use_fft):
    layer = long_mask(make(1, c_in=2, c_out=3, use_fft=use_fft), sigmas=(0.5,))  # sees far into the past
    x = torch.randn(1, 2, 40)
    y = layer(x)
    for t in (0, 10, 38):
        new_future = torch.cat([x[..., :t + 1], 10 * torch.randn(1, 2, 39 - t)], dim=-1)
        assert torch.allclose(layer(new_future)[..., :t + 1], y[..., :t + 1], atol=1e-5)
        new_present = x.clone()
        new_present[..., t] += 1.0
        assert not torch.allclose(layer(new_present)[..., t], y[..., t])


@pytest.mark.parametrize("kernel_type", ["MAGNet", "SIREN"])
@pytest.mark.parametrize("data_dim", [1, 2])
def test_every_parameter_gets_a_gradient(data_dim, kernel_type):
    # horizon 33: the initial crop keeps more than the single centre tap, whose mask gradient is zero
    layer = SeparableFlexConv(2, 3, data_dim=data_dim, horizon=33, kernel_type=kernel_type,
                              kernel_learn_omega_0=True)
    layer(torch.randn(2, 2, *([12] * data_dim))).square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# The eval-time kernel cache is tested for FlexConv and SeparableFlexConv alike in test_ckconv.py.


# --- resolution, mask growth and state -----------------------------------------------------------------
def test_set_horizon_resamples_the_same_continuous_kernel():
    layer = SeparableFlexConv(2, 3, data_dim=2, horizon=17)
    layer.grow_mask()  # no cropping: the whole grid on both resolutions
    coarse = layer.kernel(torch.zeros(1, 2, 16, 16)).detach()
    assert coarse.shape == (2, 1, 17, 17) and layer.kernel_size == (17, 17)
    layer.set_horizon(33, rescale=True)
    assert layer.sampling_rate_norm == pytest.approx(0.25)
    fine = layer.kernel(torch.zeros(1, 2, 32, 32)).detach()
    assert fine.shape == (2, 1, 33, 33)
    assert torch.allclose(fine[..., ::2, ::2] * 4, coarse, atol=1e-5)


def test_grow_mask_and_mask_properties():
    layer = make(1)
    layer(torch.randn(1, 3, 60))
    assert layer.kernel_size[0] < 60
    assert torch.equal(layer.mask_mean, torch.tensor([1.0]))
    assert layer.mask_sigma.shape == (1,)
    layer.grow_mask()
    layer(torch.randn(1, 3, 60))
    assert layer.kernel_size == (60,)


def test_state_dict_round_trip_keeps_grid_and_weights():
    layer = long_mask(make(1))
    layer(torch.randn(1, 3, 100))
    state = layer.state_dict()
    assert {"pointwise_weight", "bias", "mask_params", "_extra_state"} <= set(state)
    assert state["_extra_state"] == {"grid_size": 100, "sampling_rate_norm": 1.0}
    fresh = make(1)
    fresh.load_state_dict(state)
    assert fresh.grid_size == 100
    x = torch.randn(2, 3, 50)  # a shorter input keeps the trained grid
    assert torch.allclose(fresh(x), layer(x))


# --- parameter counts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("data_dim", [1, 2])
def test_parameter_count_formula(data_dim):
    c_in, c_out, H, L, D = 5, 7, 32, 3, data_dim
    layer = SeparableFlexConv(c_in, c_out, data_dim=D, horizon=33)
    magnet = L * (H * H + H) + (H + 1) * c_in + (L + 1) * (3 * D * H + H)  # kernel net with C_in outputs
    assert n_params(layer.kernel_net) == magnet
    assert n_params(layer) == magnet + 2 * D + c_in * c_out + c_out
    assert n_params(SeparableFlexConv(c_in, c_out, D, 33, bias=False)) < n_params(layer) - c_out  # + net biases


@pytest.mark.parametrize("kernel_type", KERNEL_TYPES)
def test_kernel_net_outputs_one_kernel_per_input_channel(kernel_type):
    sep = SeparableFlexConv(6, 9, data_dim=2, horizon=9, kernel_type=kernel_type)
    dense = FlexConv(6, 9, data_dim=2, horizon=9, kernel_type=kernel_type)
    output = [m for m in sep.kernel_net.modules() if isinstance(m, torch.nn.Linear)][-1]
    # Only the output layer of the kernel net shrinks: (H + 1) * (C_in * C_out - C_in) fewer parameters.
    assert output.out_features == 6
    hidden = output.in_features
    assert n_params(dense.kernel_net) - n_params(sep.kernel_net) == (hidden + 1) * (6 * 9 - 6)


# --- regularisers and optimiser tags -------------------------------------------------------------------
def test_kernel_norm_penalty_is_the_norm_of_the_dense_kernel():
    model = torch.nn.Sequential(make(2, c_in=2, c_out=3), torch.nn.ReLU(), FlexConv(3, 2, 2, 9))
    with torch.no_grad():
        model[0].bias.fill_(0.5)
    model(torch.randn(1, 2, 12, 12))
    sep, dense = model[0], model[2]
    expected = sep.dense_kernel().norm() + sep.bias.norm() + dense.last_kernel.norm() + dense.bias.norm()
    penalty = kernel_norm_penalty(model)
    assert torch.isclose(penalty, expected)
    penalty.backward()
    assert sep.pointwise_weight.grad.abs().sum() > 0 and sep.mask_params.grad.abs().sum() > 0


def test_kernel_norm_ignores_how_the_scale_is_split():
    layer = make(2)
    assert layer.last_kernel_norm() is None  # no forward yet
    x = torch.randn(1, 3, 9, 9)
    layer(x)
    before = layer.last_kernel_norm()
    layer.sampling_rate_norm = 0.5  # halves the depthwise kernel ...
    with torch.no_grad():
        layer.pointwise_weight.mul_(2.0)  # ... and doubles the mix: the same layer
    layer(x)
    assert torch.isclose(layer.last_kernel_norm(), before)


def test_anti_aliasing_penalty_acts_on_separable_layers():
    layer = make(2)
    penalty = anti_aliasing_penalty(layer, resolution=17, factor=0.1, target="gabor+mask")
    assert penalty > 0
    penalty.backward()
    assert layer.kernel_net.filters[0].gamma.grad.abs().sum() > 0
    assert layer.mask_params.grad[:, 1].abs().sum() > 0


def test_mask_parameters_carry_the_mask_tag():
    model = torch.nn.Sequential(make(2), torch.nn.BatchNorm2d(4), make(2, c_in=4, c_out=4))
    groups = group_parameters_by_tag(model)
    assert groups["mask"] == [model[0].mask_params, model[2].mask_params]
    assert any(p is model[0].pointwise_weight for p in groups["default"])
    assert sum(len(g) for g in groups.values()) == len(list(model.parameters()))


# --- config and models ---------------------------------------------------------------------------------
def tiny_model_cfg(net_type, horizon):
    return {"net": {"type": net_type, "no_hidden": 4, "no_blocks": 2, "block_width_factors": [1.0, 1, 2.0, 1]},
            "conv": {"type": "SeparableFlexConv", "horizon": horizon},
            "kernel": {"no_hidden": 8, "no_layers": 2}}


@pytest.mark.parametrize("net_type, data_dim, shape", [("ResNet", 2, (2, 3, 8, 8)), ("TCN", 1, (2, 3, 16))])
def test_build_model_with_separable_layers(net_type, data_dim, shape):
    from models import build_model

    model = build_model(tiny_model_cfg(net_type, 17 if data_dim == 2 else "same"), data_dim, 3, 10)
    convs = [m for m in model.modules() if isinstance(m, FlexConv)]
    assert convs and all(isinstance(m, SeparableFlexConv) for m in convs)
    out = model(torch.randn(*shape))
    assert out.shape == (2, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_separable_tcn_is_causal():
    from models import build_model

    model = build_model(tiny_model_cfg("TCN", "same"), 1, 3, 10).eval()
    x = torch.randn(2, 3, 16)
    x2 = x.clone()
    x2[:, :, 10:] += 1.0
    with torch.no_grad():
        y, y2 = model.blocks(x), model.blocks(x2)
    assert torch.allclose(y[..., :10], y2[..., :10], atol=1e-5)
    assert not torch.allclose(y[..., 10:], y2[..., 10:])


def test_config_accepts_the_separable_type_and_its_regulariser():
    from config import ConfigError, read_command

    spec = read_command(["conv.type=SeparableFlexConv", "kernel.regularize=true"]).spec
    assert spec.model.conv.type == "SeparableFlexConv" and spec.loss.anti_aliasing is not None
    assert read_command(["model=flexnet7_separable", "dataset=CIFAR10"]).spec.model.conv.type == "SeparableFlexConv"
    with pytest.raises(ConfigError, match="mask.init_value"):
        read_command(["conv.type=SeparableFlexConv", "mask.init_value=0"])
    with pytest.raises(ConfigError, match="FlexConv, SeparableFlexConv"):
        read_command(["conv.type=CKConv", "kernel.regularize=true"])
