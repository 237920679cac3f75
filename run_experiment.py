"""Train and test a model, or evaluate a checkpoint.

    python run_experiment.py                                   # default: FlexTCN on MNIST-1D (CPU, minutes)
    python run_experiment.py experiment=t3_cifar10_flexnet7    # a paper preset; any key can be overridden
    python run_experiment.py train.resume=outputs/<day>/<time>/checkpoints/last.pt   # continue a killed run
    python run_experiment.py train.do=False pretrained=True pretrained_params.filepath=<run>/checkpoints/best.pt

Every key of the original FlexConv config is accepted (see cfg/config.yaml). Multi-GPU: launch with
``torchrun --nproc_per_node=N run_experiment.py ...``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from config import check_overrides_or_exit, explicit_keys, validate_or_exit
from engine.errors import report_errors
from engine.runtime import hydra_outputs_of_this_rank


@hydra.main(config_path="cfg", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    from engine.experiment import run

    validate_or_exit(cfg, entry="run_experiment")  # a bad value exits 2 like a misspelt key, before any work
    hydra_cfg = HydraConfig.get()
    with report_errors():
        run(cfg, Path(hydra_cfg.runtime.output_dir), explicit_keys(hydra_cfg.overrides.task))


if __name__ == "__main__":
    check_overrides_or_exit(sys.argv[1:])
    sys.argv[1:] = hydra_outputs_of_this_rank(sys.argv[1:])
    main()
