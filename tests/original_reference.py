"""Test helper: checkpoints in the original FlexConv code's format, and the original's forward pass.

* :func:`original_state` draws a state dict of one of the original's layouts (``fixtures/original_layouts.json``:
  every key, shape and dtype the original code writes for a paper model) with plausible random values, the
  mask parameters set to one of the :data:`MASK_STATES`.
* :func:`reference_logits` is the original network's forward written directly from the original's description,
  on the ORIGINAL names and layouts (1x1-conv kernel nets on a ``[1, D, n, n]`` grid, mask rows per axis, 1D mask
  mean on the absolute grid, causal convolution with the last tap on the current step), in float64, with
  ``torch.nn.functional`` only: nothing of ``ckconv``, ``models`` or ``engine.original`` is used, so it checks the
  mapping and our layers instead of repeating them.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F

LAYOUTS = json.loads((Path(__file__).parent / "fixtures" / "original_layouts.json").read_text())["layouts"]
MASK_STATES = ("init", "grown", "crop")  # as initialised; grown to the whole grid; non-square / off-centre crops


def flags_of(layout: dict) -> dict:
    return dict(flag.split("=", 1) for flag in layout["flags"])


def entries(layout: dict):
    """(key, shape, dtype) of every entry of the layout's state dict, in file order."""
    for entry in layout["state_dict"]:
        key, shape, *dtype = entry.split(" ")
        yield key, tuple(int(n) for n in shape.split("x") if n), getattr(torch, dtype[0] if dtype else "float32")


def grid_size(layout: dict) -> int:
    """The kernel grid (``train_length``) the original builds: ``conv.horizon``, or the input length for "same"."""
    horizon = flags_of(layout).get("conv.horizon", "same")
    return layout["input_shape"][-1] if horizon == "same" else int(horizon)


# --- a state dict in the original's layout ------------------------------------------------------------------
def _mask_params(data_dim: int, state: str, layer: int, generator: torch.Generator) -> torch.Tensor:
    jitter = lambda scale: float(torch.empty(()).uniform_(-scale, scale, generator=generator))  # noqa: E731
    if data_dim == 1:
        mean, sigma = {"init": (1.0, 0.075), "grown": (0.97, 1.0), "crop": (0.9, 0.3)}[state]
        return torch.tensor([[mean + jitter(0.02), sigma + jitter(0.01)]])
    if state == "init":
        return torch.tensor([[jitter(0.005), 0.075 + jitter(0.003)], [jitter(0.005), 0.075 + jitter(0.003)]])
    if state == "grown":
        return torch.tensor([[jitter(0.05), 0.5 + jitter(0.02)], [jitter(0.05), 0.55 + jitter(0.02)]])
    # Non-square, off-centre: about 9 x 23 taps on a 33-tap grid; one layer in four with a negative sigma.
    sign = -1.0 if layer % 4 == 3 else 1.0
    return torch.tensor([[0.05 + jitter(0.02), sign * (0.12 + jitter(0.01))],
                         [-0.1 + jitter(0.02), 0.3 + jitter(0.01)]])


def original_state(layout: dict, mask_state: str = "init", seed: int = 0) -> dict:
    """A state dict with exactly the layout's keys, shapes and dtypes and plausible values."""
    generator = torch.Generator().manual_seed(seed)
    flags = flags_of(layout)
    data_dim = len(layout["input_shape"]) - 1
    state, masks = {}, 0

    def uniform(shape, bound):
        return torch.empty(shape).uniform_(-bound, bound, generator=generator)

    for key, shape, dtype in entries(layout):
        leaf = key.rsplit(".", 1)[-1]
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        if leaf == "mask_params":
            value = _mask_params(data_dim, mask_state, masks, generator)
            masks += 1
        elif leaf == "train_length":
            value = torch.tensor([grid_size(layout)])
        elif leaf == "temperature":
            value = torch.tensor([float(flags.get("mask.temperature", 15.0))])
        elif leaf == "mask_threshold":
            value = torch.tensor([0.1])
        elif leaf == "num_batches_tracked":
            value = torch.tensor(1000)
        elif leaf in ("running_mean", "running_var"):
            value = torch.zeros(shape) if leaf == "running_mean" else torch.ones(shape)  # calibrated later
        elif re.search(r"(norm\d|bn\d)\.weight$", key):
            value = 1.0 + uniform(shape, 0.3)
        elif re.search(r"(norm\d|bn\d)\.bias$", key):
            value = uniform(shape, 0.2)
        elif leaf == "omega_0":
            value = torch.tensor([float(flags.get("kernel.omega_0", 30.0))])
        elif leaf == "mu":
            value = uniform(shape, 1.0)
        elif leaf == "gamma":
            value = 0.5 + 2.5 * torch.rand(shape, generator=generator)
        elif ".Kernel.filters." in key and leaf == "weight":
            value = uniform(shape, 12.0)
        elif ".Kernel.filters." in key and leaf == "bias":
            value = uniform(shape, math.pi)
        elif ".Kernel.kernel_net.0." in key and leaf == "weight":
            value = uniform(shape, 1.0 / shape[1])
        elif ".Kernel.kernel_net." in key and leaf == "weight":
            value = uniform(shape, math.sqrt(6.0 / fan_in) / float(flags.get("kernel.omega_0", 30.0)))
        elif ".Kernel." in key and leaf == "weight":
            value = uniform(shape, 1.0 / math.sqrt(fan_in))
        elif ".Kernel." in key and leaf == "bias":
            value = uniform(shape, 0.3)
        elif leaf == "weight":  # convolutions and readouts: He init
            value = torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif leaf == "bias":
            value = uniform(shape, 0.1)
        else:
            raise AssertionError(f"no value rule for {key}")
        state[key] = value.reshape(shape).to(dtype)
    return state


# --- the original's forward -----------------------------------------------------------------------------------
class Reference:
    """The original network of ``layout`` on its own state dict (float64). ``calibrate=True`` records every
    BatchNorm's batch statistics as its running statistics (trained-looking activations for both codes)."""

    def __init__(self, layout: dict, state: dict, dtype: torch.dtype = torch.float64):
        self.layout, self.flags = layout, flags_of(layout)
        self.state = state
        self.data_dim = len(layout["input_shape"]) - 1
        self.dtype = dtype
        self.calibrate = False

    def p(self, key: str) -> torch.Tensor:
        return self.state[key].to(self.dtype)

    # layers
    def batch_norm(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        dims = [0] + list(range(2, x.dim()))
        if self.calibrate:
            self.state[prefix + "running_mean"] = x.mean(dims).float()
            self.state[prefix + "running_var"] = x.var(dims, unbiased=True).float()
        view = (1, -1) + (1,) * (x.dim() - 2)
        mean, var = self.p(prefix + "running_mean").view(view), self.p(prefix + "running_var").view(view)
        weight, bias = self.p(prefix + "weight").view(view), self.p(prefix + "bias").view(view)
        return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias

    def same_conv(self, x, weight, bias=None, stride=1):
        """2D "same" / 1D causal cross-correlation."""
        if x.dim() == 3:
            return F.conv1d(F.pad(x, (weight.shape[-1] - 1, 0)), weight, bias)
        return F.conv2d(x, weight, bias, stride=stride, padding=(weight.shape[-2] // 2, weight.shape[-1] // 2))

    def kernel_coordinates(self, prefix: str) -> list[torch.Tensor]:
        """The coordinate vector per axis after the original's dynamic cropping."""
        n = int(self.state[prefix + "train_length"].reshape(-1)[0])
        coords = torch.linspace(-1.0, 1.0, n, dtype=self.dtype)
        if prefix + "mask_params" not in self.state:
            return [coords] * self.data_dim
        params = self.p(prefix + "mask_params")
        reach = math.sqrt(-2.0 * math.log(float(self.state[prefix + "mask_threshold"].reshape(-1)[0])))
        if self.data_dim == 1:
            mean, sigma = float(params[0, 0]), float(params[0, 1])
            root = mean - abs(sigma) * reach
            return [coords[coords > root] if abs(root) < 1 else coords]
        vectors = []
        for axis in range(2):
            mean, sigma = float(params[axis, 0]), float(params[axis, 1])
            radius = abs(mean) + abs(sigma) * reach
            if radius >= 1:
                vectors.append(coords)
                continue
            first = next(j for j in range(n // 2 + 1) if coords[j] > -radius)
            vectors.append(coords[first: n - first])
        return vectors

    def kernel(self, prefix: str, c_out: int, c_in: int) -> torch.Tensor:
        """The CKConv / FlexConv kernel ``[C_out, C_in, *taps]``: kernel net (1x1 convs on the grid), times
        ``kernel.sampling_rate_norm``, times the mask."""
        vectors = self.kernel_coordinates(prefix)
        grid = torch.stack(torch.meshgrid(*vectors, indexing="ij"))[None]  # [1, D, n_1, ..., n_D]
        conv = F.conv1d if self.data_dim == 1 else F.conv2d
        net = prefix + "Kernel."
        if net + "kernel_net.0.weight" in self.state:  # SIREN: sin(omega_0 (W z + b)), then a plain linear
            indices = sorted(int(m.group(1)) for m in (re.match(re.escape(net) + r"kernel_net\.(\d+)\.weight$", k)
                                                         for k in self.state) if m)
            z = grid
            for index in indices[:-1]:
                omega = self.p(f"{net}kernel_net.{index}.omega_0")
                z = torch.sin(omega * conv(z, self.p(f"{net}kernel_net.{index}.weight"),
                                           self.p(f"{net}kernel_net.{index}.bias")))
            last = f"{net}kernel_net.{indices[-1]}."
            out = conv(z, self.p(last + "weight"), self.p(last + "bias"))
        else:  # MFN: z_0 = g_0(x), z_l = g_l(x) * A_l(z_{l-1}), out = A_out(z_L)
            def filt(j):
                sine = torch.sin(conv(grid, self.p(f"{net}filters.{j}.linear.weight"),
                                      self.p(f"{net}filters.{j}.linear.bias")))
                if f"{net}filters.{j}.gamma" not in self.state:
                    return sine
                mu, gamma = self.p(f"{net}filters.{j}.mu"), self.p(f"{net}filters.{j}.gamma")
                spatial = (1,) * self.data_dim
                offset = grid[0][None] - mu.view(*mu.shape, *spatial)               # [H, D, n...]
                envelope = torch.exp(-0.5 * (gamma.view(*gamma.shape, *spatial) * offset).pow(2).sum(1))
                return envelope[None] * sine

            layers = sorted({int(k.split(".")[-2]) for k in self.state if k.startswith(net + "linear.")})
            z = filt(0)
            for j in layers:
                z = filt(j + 1) * conv(z, self.p(f"{net}linear.{j}.weight"), self.p(f"{net}linear.{j}.bias"))
            out = conv(z, self.p(net + "output_linear.weight"), self.p(net + "output_linear.bias"))
        sizes = [len(v) for v in vectors]
        kernel = out.reshape(c_out, c_in, *sizes) * float(self.flags.get("kernel.sampling_rate_norm", 1.0))
        if prefix + "mask_params" in self.state:
            params = self.p(prefix + "mask_params")
            mask = torch.ones(sizes, dtype=self.dtype)
            for axis, coords in enumerate(vectors):
                shape = [1] * self.data_dim
                shape[axis] = -1
                mask = mask * torch.exp(-0.5 * ((coords - params[axis, 0]) / params[axis, 1]) ** 2).view(shape)
            kernel = kernel * mask
        return kernel

    def layer(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        """One conv of the configured type (``cconv1`` / ``cconv2`` / the stem)."""
        bias = self.p(prefix + "bias")
        if prefix + "weight" in self.state:  # conv.type=Conv
            return self.same_conv(x, self.p(prefix + "weight"), bias)
        return self.same_conv(x, self.kernel(prefix, bias.shape[0], x.shape[1]), bias)

    # networks
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if "finallyr.weight" in self.state:
            return self.tcn(x)
        if "linear.weight" in self.state:
            return self.cifar_resnet(x)
        return self.img_resnet(x)

    def _blocks(self, root: str) -> list[int]:
        return sorted({int(k.split(".")[1]) for k in self.state if k.startswith(root + ".")})

    def _shortcut(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        if prefix + "shortcut.0.weight" not in self.state:
            return x
        conv = F.conv1d if x.dim() == 3 else F.conv2d
        return conv(x, self.p(prefix + "shortcut.0.weight"), self.p(prefix + "shortcut.0.bias"))

    def img_resnet(self, x):
        h = F.relu(self.batch_norm("norm1.", self.layer("cconv1.", x)))
        for i in self._blocks("blocks"):
            prefix = f"blocks.{i}."
            y = F.relu(self.batch_norm(prefix + "norm1.", self.layer(prefix + "cconv1.", h)))
            y = self.batch_norm(prefix + "norm2.", self.layer(prefix + "cconv2.", y))
            h = F.relu(y + self._shortcut(prefix, h))
        pooled = h.mean(dim=tuple(range(2, h.dim())), keepdim=True)
        conv = F.conv1d if h.dim() == 3 else F.conv2d
        return conv(pooled, self.p("out_layer.weight"), self.p("out_layer.bias")).flatten(1)

    def tcn(self, x):
        h = x
        for i in self._blocks("backbone"):
            prefix = f"backbone.{i}."
            y = F.relu(self.batch_norm(prefix + "norm1.", self.layer(prefix + "cconv1.", h)))
            y = F.relu(self.batch_norm(prefix + "norm2.", self.layer(prefix + "cconv2.", y)))
            h = F.relu(y + self._shortcut(prefix, h))
        return F.linear(h[:, :, -1], self.p("finallyr.weight"), self.p("finallyr.bias"))

    def cifar_resnet(self, x):
        h = F.relu(self.batch_norm("bn1.", self.same_conv(x, self.p("conv1.weight"))))
        for stage in (1, 2, 3):
            for i in sorted({int(k.split(".")[1]) for k in self.state if k.startswith(f"layer{stage}.")}):
                prefix = f"layer{stage}.{i}."
                stride = 2 if stage > 1 and i == 0 else 1
                y = self.same_conv(h, self.p(prefix + "conv1.weight"), stride=stride)
                y = F.relu(self.batch_norm(prefix + "bn1.", y))
                y = self.batch_norm(prefix + "bn2.", self.same_conv(y, self.p(prefix + "conv2.weight")))
                shortcut = h
                if stride != 1 or h.shape[1] != y.shape[1]:  # option A: subsample, pad channels with zeros
                    pad = (y.shape[1] - h.shape[1]) // 2
                    shortcut = F.pad(h[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))
                h = F.relu(y + shortcut)
        return F.linear(h.mean(dim=(2, 3)), self.p("linear.weight"), self.p("linear.bias"))


def calibrated(layout: dict, state: dict, batch: int = 2, seed: int = 1, input_shape=None) -> dict:
    """``state`` with BatchNorm running statistics taken from a batch of random inputs (as a trained network's
    would be: activations stay of order one through every block, so the logits depend on every layer)."""
    reference = Reference(layout, dict(state), dtype=torch.float32)
    reference.calibrate = True
    shape = input_shape or layout["input_shape"]
    with torch.no_grad():
        reference(torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed)))
    return reference.state


def reference_logits(layout: dict, state: dict, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return Reference(layout, state)(x)


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest absolute difference over the largest absolute reference logit."""
    return float((ours.double() - reference).abs().max() / reference.abs().max())
