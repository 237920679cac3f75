"""Cross-resolution: train at one resolution, test out of the box and fine-tune at another (paper Table 4).

    python run_crossres.py experiment=t4_crossres_flexnet7_gabor seed=0         # 16x16 -> 32x32, 100 + 100 epochs
    python run_crossres.py experiment=dev/crossres_cifar10_tiny dataset_params.synthetic=true   # smoke run
    python run_crossres.py experiment=t4_crossres_flexnet7 train.resume=true hydra.run.dir=<run dir>  # continue
    python run_crossres.py "cross_res.eval_resolutions=[16,24,32]" pretrained=True \\
        pretrained_params.filepath=<run dir>/finetune/checkpoints/best.pt          # one checkpoint, many resolutions

Writes ``summary.json`` with ``source_accuracy``, ``ootb_accuracy``, ``ootb_difference``, ``final_accuracy`` and
``no_params`` (see engine/crossres.py for the phases, the weights used and the resume rules). Works for
CIFAR10, MNIST and FashionMNIST.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from config import prepare_argv, run_entry


@hydra.main(config_path="cfg", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    run_entry(cfg, "run_crossres")


if __name__ == "__main__":
    prepare_argv()
    main()
