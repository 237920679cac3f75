"""Named profiler ranges for the layers (shown by ``run_profiler.py profile.mode=profile``)."""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.profiler import record_function


def profiled(name: str):
    """``record_function(name)``, except inside ``torch.compile`` tracing, which ignores profiler ranges
    (with a warning per range)."""
    return nullcontext() if torch.compiler.is_compiling() else record_function(name)
