"""Behaviour of the ckconv layer library: shapes, crop sizes, parameter counts, FFT == spatial,
causality, gradients, the eval-time kernel cache, cross-resolution resampling, errors."""
import math

import pytest
import torch

from ckconv import CKConv, FlexConv, SeparableFlexConv, SRFConv
from ckconv.nn import functional as Fn
from ckconv.nn import group_parameters_by_tag
from ckconv.nn.kernelnets import KERNEL_TYPES


def n_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- crop sizes at init ------------------------------------------------------------------
@pytest.mark.parametrize("horizon, expected", [(33, (5, 5)), (17, (3, 3)), (29, (5, 5)), (97, (15, 15))])
def test_initial_crop_2d(horizon, expected):
    layer = FlexConv(2, 3, data_dim=2, horizon=horizon)
    layer(torch.randn(1, 2, 16, 16))
    assert layer.kernel_size == expected
    assert layer.last_kernel.shape == (3, 2) + expected


@pytest.mark.parametrize("length, expected", [(784, 64), (1000, 81), (1024, 83)])
def test_initial_crop_1d(length, expected):
    layer = FlexConv(1, 2, data_dim=1, horizon="same")
    layer(torch.randn(1, 1, length))
    assert layer.kernel_size == (expected,)


def test_crop_follows_mask_and_can_be_non_square():
    layer = FlexConv(1, 1, data_dim=2, horizon=33)
    with torch.no_grad():
        layer.mask_params[0, 1] = 0.3   # rows: r = 0.644 -> 2 * ceil(0.644 * 16) - 1 = 21
        layer.mask_params[1, 1] = 0.6   # columns: r = 1.29 >= 1 -> full 33
    layer(torch.randn(1, 1, 8, 8))
    assert layer.kernel_size == (21, 33)


def test_ckconv_uses_full_horizon():
    layer = CKConv(2, 2, data_dim=2, horizon=17)
    layer(torch.randn(1, 2, 9, 9))
    assert layer.kernel_size == (17, 17)


@pytest.mark.parametrize("horizon, length, expected", [("same", 31, 31), ("same", 32, 33), ("full", 16, 31)])
def test_horizon_keywords_2d(horizon, length, expected):
    layer = CKConv(1, 1, data_dim=2, horizon=horizon)
    layer(torch.randn(1, 1, length, length))
    assert layer.kernel_size == (expected, expected)


# --- parameter counts -----------------------------------------------------------------------
def kernel_net_params(kernel_type, D, H, L, N, steerable=False, learn_omega_0=False, weight_norm=False):
    if kernel_type == "MAGNet":
        return L * (H * H + H) + (H + 1) * N + (L + 1) * (3 * D * H + H) + (L + 1) * H * steerable
    if kernel_type == "Gabor":
        return L * (H * H + H) + (H + 1) * N + (L + 1) * (2 * D * H + 2 * H)
    if kernel_type == "Fourier":
        return L * (H * H + H) + (H + 1) * N + (L + 1) * (D * H + H)
    if kernel_type in ("SIREN", "nSIREN"):
        count = (D * H + H) + (L - 2) * (H * H + H) + (H * N + N)
        return count + (L - 1) * learn_omega_0 + weight_norm * ((L - 1) * H + N)
    if kernel_type == "MLP":  # no norm
        return (D * H + H) + (L - 2) * (H * H + H) + (H * N + N)
    raise AssertionError(kernel_type)


@pytest.mark.parametrize("kernel_type", KERNEL_TYPES)
@pytest.mark.parametrize("data_dim", [1, 2])
@pytest.mark.parametrize("layer_cls", [CKConv, FlexConv])
def test_parameter_counts(layer_cls, data_dim, kernel_type):
    c_in, c_out, H, L = 3, 5, 32, 3
    layer = layer_cls(c_in, c_out, data_dim=data_dim, horizon=33, kernel_type=kernel_type)
    expected = kernel_net_params(kernel_type, data_dim, H, L, c_in * c_out) + c_out
    if layer_cls is FlexConv:
        expected += 2 * data_dim
    assert n_params(layer) == expected


def test_paper_layer_formulas():
    # FlexConv 2D MAGNet 4068 + 33 Cin Cout + Cout; CKConv 1D 3680 + ...; SIREN 2D 1152 + ...
    assert n_params(FlexConv(24, 24, 2, 33)) == 4068 + 33 * 24 * 24 + 24
    assert n_params(CKConv(30, 30, 1, "same")) == 3680 + 33 * 900 + 30
    assert n_params(CKConv(24, 36, 2, 33, kernel_type="SIREN")) == 1152 + 33 * 24 * 36 + 36
    assert n_params(CKConv(24, 36, 2, 33, kernel_type="Gabor")) == 3936 + 33 * 24 * 36 + 36
    assert n_params(CKConv(24, 36, 2, 33, kernel_type="Fourier")) == 3552 + 33 * 24 * 36 + 36


@pytest.mark.parametrize("options, extra", [
    (dict(kernel_type="SIREN", kernel_learn_omega_0=True), 2),
    (dict(kernel_type="SIREN", kernel_weight_norm=True), 2 * 32 + 6),
    (dict(kernel_type="MAGNet", kernel_steerable=True), 4 * 32),
])
def test_parameter_count_options(options, extra):
    base = {k: v for k, v in options.items() if k == "kernel_type"}
    assert n_params(CKConv(2, 3, 2, 9, **options)) == n_params(CKConv(2, 3, 2, 9, **base)) + extra


def test_srf_parameter_count_and_size_follows_sigma():
    layer = SRFConv(6, 7)
    assert n_params(layer) == 15 * 6 * 7 + 1
    assert layer(torch.randn(2, 6, 12, 12)).shape == (2, 7, 12, 12)
    assert layer.kernel_size == (7, 7)  # sigma 1: half-size ceil(2.5) = 3
    with torch.no_grad():
        layer.scale.fill_(1.0)  # sigma 2: half-size ceil(4.5) = 5
    layer(torch.randn(1, 6, 12, 12))
    assert layer.kernel_size == (11, 11)
    layer.set_scale_sigma(2.0)  # sigma 4: half-size ceil(8.5) = 9
    layer(torch.randn(1, 6, 12, 12))
    assert layer.kernel_size == (19, 19)


def test_srf_basis_is_scale_normalised_gaussian_derivatives():
    from ckconv.nn.srf import gaussian_derivatives
    x = torch.arange(-12, 13, dtype=torch.float64)
    sigma = torch.tensor(3.0, dtype=torch.float64)
    g = gaussian_derivatives(x, sigma, 2)
    assert torch.isclose(g[0].sum(), torch.tensor(1.0, dtype=torch.float64))
    # first derivative of the (normalised) Gaussian times sigma: -x / sigma * G
    assert torch.allclose(g[1], -x / sigma * g[0])
    # second derivative times sigma^2: (x^2 / sigma^2 - 1) G
    assert torch.allclose(g[2], (x ** 2 / sigma ** 2 - 1) * g[0])


# --- convolutions: FFT == spatial, causality ---------------------------------------------------------
def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("length", [15, 16, 33, 100])
@pytest.mark.parametrize("k", [1, 5, 16, 31])
def test_causal_fft_matches_spatial(length, k):
    x, kernel, bias = torch.randn(2, 3, length), torch.randn(4, 3, k), torch.randn(4)
    assert rel_err(Fn.causal_fftconv1d(x, kernel, bias), Fn.causal_conv1d(x, kernel, bias)) < 1e-4


@pytest.mark.parametrize("size", [(15, 15), (16, 16), (17, 12)])
@pytest.mark.parametrize("kernel_size", [(3, 3), (5, 9), (11, 3), (33, 33)])
def test_fft2d_matches_spatial(size, kernel_size):
    x, kernel, bias = torch.randn(2, 3, *size), torch.randn(4, 3, *kernel_size), torch.randn(4)
    assert rel_err(Fn.fftconv2d_same(x, kernel, bias), Fn.conv2d_same(x, kernel, bias)) < 1e-4


def test_spatial_conv_matches_definition():
    # "same" cross-correlation: tap (a, b) multiplies the pixel a rows below and b columns right.
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 4, 5] = 1.0
    kernel = torch.zeros(1, 1, 3, 3)
    kernel[0, 0, 2, 2] = 1.0  # tap (+1, +1)
    y = Fn.conv2d_same(x, kernel)
    assert y[0, 0, 3, 4] == 1.0 and y.sum() == 1.0
    # causal: the last tap multiplies the current sample
    x1 = torch.arange(1.0, 6.0).view(1, 1, 5)
    assert torch.equal(Fn.causal_conv1d(x1, torch.tensor([[[0.0, 0.0, 1.0]]])), x1)
    assert torch.equal(Fn.causal_conv1d(x1, torch.tensor([[[1.0, 0.0, 0.0]]]))[0, 0], torch.tensor([0, 0, 1.0, 2, 3]))


@pytest.mark.parametrize("use_fft", [False, True])
@pytest.mark.parametrize("layer_cls", [CKConv, FlexConv])
def test_causality(layer_cls, use_fft):
    layer = layer_cls(2, 3, data_dim=1, horizon="same", use_fft=use_fft)
    with torch.no_grad():
        if layer_cls is FlexConv:
            layer.mask_params[0, 1] = 0.5  # a long kernel, so the test sees far into the past
    x = torch.randn(1, 2, 40)
    y = layer(x)
    for t in (0, 10, 38):
        x2 = x.clone()
        x2[..., t + 1:] = torch.randn_like(x2[..., t + 1:]) * 10
        assert torch.allclose(layer(x2)[..., : t + 1], y[..., : t + 1], atol=1e-5)
        x3 = x.clone()
        x3[..., t] += 1.0
        assert not torch.allclose(layer(x3)[..., t], y[..., t])  # the current step does count


@pytest.mark.parametrize("data_dim, shape", [(1, (2, 3, 50)), (2, (2, 3, 21, 20))])
def test_layer_fft_and_spatial_paths_agree(data_dim, shape):
    spatial = FlexConv(3, 4, data_dim=data_dim, horizon=33 if data_dim == 2 else "same", use_fft=False)
    with torch.no_grad():
        spatial.mask_params[:, 1] = torch.tensor([0.3, 0.5][:data_dim])  # non-square in 2D
    fft = FlexConv(3, 4, data_dim=data_dim, horizon=spatial.horizon, use_fft=True)
    fft.load_state_dict(spatial.state_dict())
    x = torch.randn(*shape)
    assert rel_err(fft(x), spatial(x)) < 1e-4
    auto = FlexConv(3, 4, data_dim=data_dim, horizon=spatial.horizon, use_fft="auto")
    auto.load_state_dict(spatial.state_dict())
    assert rel_err(auto(x), spatial(x)) < 1e-4


# --- gradients ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_type", KERNEL_TYPES)
@pytest.mark.parametrize("data_dim", [1, 2])
def test_every_parameter_gets_a_gradient(data_dim, kernel_type):
    # horizon 33: the initial crop keeps more than the single centre tap, whose mask gradient is zero
    layer = FlexConv(2, 3, data_dim=data_dim, horizon=33, kernel_type=kernel_type, kernel_learn_omega_0=True,
                     kernel_no_layers=3)
    x = torch.randn(2, 2, *([12] * data_dim))
    layer(x).square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_srf_every_parameter_gets_a_gradient():
    layer = SRFConv(2, 3)
    layer(torch.randn(2, 2, 10, 10)).square().mean().backward()
    assert layer.alpha.grad.abs().sum() > 0 and layer.scale.grad.abs() > 0


def test_mask_sigma_never_zero():
    layer = FlexConv(2, 2, data_dim=2, horizon=9)
    with torch.no_grad():
        layer.mask_params[:, 1] = 0.0
    y = layer(torch.randn(1, 2, 9, 9))
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(layer.mask_params.grad).all()
    assert layer.kernel_size == (1, 1)


def test_parameter_tags_group_mask_and_omega():
    model = torch.nn.Sequential(FlexConv(2, 2, 2, 9, kernel_type="SIREN", kernel_learn_omega_0=True),
                                torch.nn.BatchNorm2d(2))
    groups = group_parameters_by_tag(model)
    assert groups["mask"] == [model[0].mask_params]
    assert len(groups["omega_0"]) == 2
    total = sum(len(g) for g in groups.values())
    assert total == len(list(model.parameters()))


# --- eval-time kernel cache --------------------------------------------------------------------------
@pytest.mark.parametrize("layer_cls", [FlexConv, SeparableFlexConv])
def test_eval_cache_reuses_and_invalidates(layer_cls):
    layer = layer_cls(2, 3, data_dim=2, horizon=9)
    x = torch.randn(2, 2, 9, 9)
    layer.eval()
    with torch.no_grad():
        y1 = layer(x)
        k1 = layer.last_kernel
        y2 = layer(x)
        assert layer.last_kernel is k1 and torch.equal(y1, y2)  # reused, identical
    # a parameter update (in-place, like an optimiser step) invalidates
    with torch.no_grad():
        layer.kernel_net.output_linear.weight.mul_(2.0)
        y3 = layer(x)
    assert layer.last_kernel is not k1 and not torch.allclose(y3, y1)
    # an optimiser step invalidates
    k3 = layer.last_kernel
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.train()
    layer(x).sum().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        layer(x)
    assert layer.last_kernel is not k3
    # load_state_dict invalidates
    other = layer_cls(2, 3, data_dim=2, horizon=9)
    k4 = layer.last_kernel
    layer.load_state_dict(other.state_dict())
    other.eval()
    with torch.no_grad():
        assert torch.allclose(layer(x), other(x))
    assert layer.last_kernel is not k4
    # train() invalidates
    k5 = layer.last_kernel
    layer.train()
    layer.eval()
    with torch.no_grad():
        layer(x)
    assert layer.last_kernel is not k5
    # a dtype change (module.double()) invalidates
    layer.double()
    with torch.no_grad():
        assert layer(x.double()).dtype == torch.float64 and layer.last_kernel.dtype == torch.float64


def test_no_cache_in_training_mode():
    layer = FlexConv(2, 3, data_dim=1, horizon=9)
    x = torch.randn(2, 2, 9)
    layer(x)
    k = layer.last_kernel
    layer(x)
    assert layer.last_kernel is not k and layer.last_kernel.requires_grad


# --- resolution changes and state --------------------------------------------------------------------
def test_set_horizon_resamples_same_continuous_kernel():
    layer = CKConv(1, 1, data_dim=2, horizon=17)
    coarse = layer.kernel(torch.zeros(1, 1, 16, 16)).detach()
    layer.set_horizon(33)
    assert layer.sampling_rate_norm == pytest.approx(0.25)
    fine = layer.kernel(torch.zeros(1, 1, 32, 32)).detach()
    assert fine.shape[-2:] == (33, 33)
    # every second tap of the fine grid is a tap of the coarse grid (same extent), rescaled by 1/4
    assert torch.allclose(fine[..., ::2, ::2] * 4, coarse, atol=1e-5)


def test_grid_size_is_saved_in_state_dict():
    layer = FlexConv(1, 2, data_dim=1, horizon="same")
    layer(torch.randn(1, 1, 100))
    fresh = FlexConv(1, 2, data_dim=1, horizon="same")
    fresh.load_state_dict(layer.state_dict())
    assert fresh.grid_size == 100
    x = torch.randn(1, 1, 50)  # a shorter input keeps the trained grid
    assert torch.allclose(fresh(x), layer(x))


# --- errors at construction --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    (dict(in_channels=2, out_channels=2, data_dim=2, horizon=32), ["32", "odd"]),
    (dict(in_channels=2, out_channels=2, data_dim=2, kernel_type="Siren"), ["Siren", "MAGNet"]),
    (dict(in_channels=2, out_channels=2, data_dim=3), ["data_dim=3", "1", "2"]),
    (dict(in_channels=0, out_channels=2), ["in_channels=0", "positive"]),
    (dict(in_channels=2, out_channels=-1), ["out_channels=-1", "positive"]),
    (dict(in_channels=2, out_channels=2, horizon="wide"), ["wide", "same"]),
    (dict(in_channels=2, out_channels=2, use_fft="yes"), ["yes", "auto"]),
    (dict(in_channels=2, out_channels=2, mask_type="sigmoid"), ["sigmoid", "gaussian"]),
])
def test_invalid_arguments_raise_value_error(kwargs, words):
    with pytest.raises(ValueError) as info:
        FlexConv(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_srf_rejects_1d():
    with pytest.raises(ValueError, match="data_dim"):
        SRFConv(2, 2, data_dim=1)


# --- regularisers ------------------------------------------------------------------------------------
def test_kernel_norm_penalty_sums_kernel_and_bias_norms():
    from ckconv import kernel_norm_penalty
    model = torch.nn.Sequential(FlexConv(2, 3, 2, 17), torch.nn.ReLU(), CKConv(3, 2, 2, 9), torch.nn.Conv2d(2, 2, 3))
    with torch.no_grad():
        model[0].bias.fill_(0.5)
    model(torch.randn(1, 2, 12, 12))
    expected = sum(m.last_kernel.norm() + m.bias.norm() for m in (model[0], model[2]))
    penalty = kernel_norm_penalty(model)
    assert torch.isclose(penalty, expected)
    penalty.backward()
    assert model[0].mask_params.grad is not None and model[3].weight.grad is None  # plain convs untouched


def test_anti_aliasing_penalty_budget_and_gradient():
    from ckconv import anti_aliasing_penalty
    from ckconv.nn.regularizers import filter_frequencies, nyquist_frequency
    layer = FlexConv(2, 2, data_dim=2, horizon=33)
    sines, gausses = filter_frequencies(layer.kernel_net, gauss_stddevs=2.0)
    highest = float((sines + gausses).max().detach())
    # a grid fine enough that every filter is below its budget f_N / (L + 1): no penalty
    fine = int(4 * 4 * highest) + 3
    assert anti_aliasing_penalty(layer, resolution=fine, factor=1.0) == 0
    # at 17 taps (Nyquist 4, budget 1 per filter) the MAGNet init (frequencies ~ 20 / 2 pi) is penalised
    penalty = anti_aliasing_penalty(layer, resolution=17, factor=0.1, target="gabor")
    over = torch.relu(sines + gausses - nyquist_frequency(17) / 4)
    assert torch.isclose(penalty, 0.1 * over.pow(2).sum())
    penalty.backward()
    assert layer.kernel_net.filters[0].linear.weight.grad.abs().sum() > 0
    assert layer.kernel_net.filters[0].gamma.grad.abs().sum() > 0
    # the mask term adds to every filter and reaches the mask parameters
    layer.zero_grad()
    with_mask = anti_aliasing_penalty(layer, resolution=17, factor=0.1, target="gabor+mask")
    assert with_mask > penalty
    with_mask.backward()
    assert layer.mask_params.grad[:, 1].abs().sum() > 0


@pytest.mark.parametrize("kwargs, words", [
    (dict(resolution=0), ["resolution=0", ">= 2"]),
    (dict(resolution=33, target="sines"), ["sines", "gabor"]),
    (dict(resolution=33, method="sum"), ["sum", "together"]),
])
def test_anti_aliasing_penalty_rejects_bad_arguments(kwargs, words):
    from ckconv import anti_aliasing_penalty
    with pytest.raises(ValueError) as info:
        anti_aliasing_penalty(FlexConv(1, 1, 2, 9), **kwargs)
    for word in words:
        assert word in str(info.value)
