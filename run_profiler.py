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

import hydra
from omegaconf import DictConfig

from config import prepare_argv, run_entry


@hydra.main(config_path="cfg", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    run_entry(cfg, "run_profiler")


if __name__ == "__main__":
    prepare_argv()
    main()
