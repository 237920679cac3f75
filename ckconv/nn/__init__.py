"""Continuous-kernel layers: FlexConv, SeparableFlexConv, CKConv, SRF/N-Jet, kernel nets, functional convolutions,
regularisers."""
from . import functional
from .ckconv import CKConv, FlexConv, SeparableFlexConv
from .grids import cartesian_points, coordinates
from .kernelnets import KERNEL_TYPES, MLP, SIREN, FourierNet, GaborNet, MAGNet, build_kernel_net
from .regularizers import anti_aliasing_penalty, kernel_norm_penalty, nyquist_frequency
from .srf import SRFConv
from .tags import group_parameters_by_tag, param_groups

__all__ = [
    "CKConv", "FlexConv", "SeparableFlexConv", "SRFConv",
    "MAGNet", "GaborNet", "FourierNet", "SIREN", "MLP", "KERNEL_TYPES",
    "build_kernel_net", "kernel_norm_penalty", "anti_aliasing_penalty",
    "nyquist_frequency", "group_parameters_by_tag", "param_groups", "coordinates", "cartesian_points", "functional",
]
