"""Time or profile any configured model on synthetic inputs of its dataset's shape (no data on disk).

    python run_profiler.py                                                  # default model (FlexTCN, MNIST-1D)
    python run_profiler.py experiment=t3_cifar10_flexnet7 device=cuda      # any preset / overrides
    python run_profiler.py experiment=t3_cifar10_flexnet7 profile.grow_masks=true   # cost of fully grown kernels
    python run_profiler.py experiment=t1_smnist_flextcn4 profile.mode=profile      # torch.profiler table + trace

Writes ``profile.json`` into the run directory (``no_params``, forward and forward+backward times in train and
eval mode, samples/s, peak memory, kernel sizes); ``profile.mode=profile`` adds ``timings.csv`` and a Chrome
trace ``trace.json`` (see engine/profiler.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from config import check_overrides_or_exit, validate_or_exit
from engine.errors import report_errors


@hydra.main(config_path="cfg", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    from engine.profiler import run

    validate_or_exit(cfg, entry="run_profiler")  # a bad value exits 2 like a misspelt key
    with report_errors():
        run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    check_overrides_or_exit(sys.argv[1:])
    main()
