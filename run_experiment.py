"""Train and test a model, or evaluate a checkpoint.

    python run_experiment.py                                   # default: FlexTCN on MNIST-1D (CPU, minutes)
    python run_experiment.py experiment=t3_cifar10_flexnet7    # a paper preset; any key can be overridden
    python run_experiment.py train.resume=outputs/<day>/<time>/checkpoints/last.pt   # continue a killed run
    python run_experiment.py train.do=False pretrained=True pretrained_params.filepath=<run>/checkpoints/best.pt

Every key of the original FlexConv config is accepted (see cfg/config.yaml). Multi-GPU: launch with
``torchrun --nproc_per_node=N run_experiment.py ...``.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from config import prepare_argv, run_entry


@hydra.main(config_path="cfg", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    run_entry(cfg, "run_experiment")


if __name__ == "__main__":
    prepare_argv()
    main()
