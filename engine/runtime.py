"""Process setup: device choice, seeding, and (optional) distributed data parallel under torchrun."""
from __future__ import annotations

import os
import random
import re
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # the allowed values of ``device`` (N = a GPU index)


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def on_terminal() -> bool:
    """Whether this process's progress bars would be seen live: stderr (where tqdm draws them) is a terminal.

    Redirected to a file or pipe (SLURM, CI, ``> log.txt 2>&1``) a bar is never redrawn in place, so every
    one leaves fragments such as ``0%|          | 0/57`` in the log; there runs print one line per epoch
    and no bars.
    """
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def resolve_device(device: str) -> torch.device:
    """``device`` key -> ``torch.device``. ``auto`` picks CUDA when available, else CPU.

    Raises:
        ConfigError: for ``cuda`` / ``cuda:N`` without CUDA or with a GPU index out of range.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", str(device))
    if not match:
        raise ConfigError(f"device={device!r} is invalid: allowed values are {', '.join(DEVICES)}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device={device} was requested but CUDA is not available on this machine "
            "(torch.cuda.is_available() is False). Use device=cpu, or device=auto to pick CUDA when present.")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device={device} is invalid: this machine has {count} CUDA device(s) "
                          f"(cuda:0..cuda:{count - 1})")
    return torch.device(device)


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``): NCCL on CUDA, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world_size, local_rank), device


def broadcast_from_main(obj):
    """Rank 0's value on every rank (so that all ranks take the same decisions); identity in one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def draw_seed(seed: int) -> int:
    """``seed=-1`` draws a fresh seed (logged so the run can be repeated)."""
    return int.from_bytes(os.urandom(2), "little") if seed == -1 else int(seed)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        # Kernel sizes change during FlexConv training, so cuDNN autotuning would re-run for every new
        # shape; it is left off.
        torch.backends.cudnn.benchmark = False
