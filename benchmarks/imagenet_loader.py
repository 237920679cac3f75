"""Downsampled-ImageNet loading: is ``in_ram`` / ``from_cache`` a speed-up, and is the loader or the model the
bottleneck?

Writes synthetic data of the real on-disk layouts (random images, the 1000 class folders / the 10 official batch
files) into a temporary data root, then times ``datasets.build_data`` + epochs of the training loader (ResNet
augmentation, protocol=paper: every training image once per epoch) for each way of holding the images:

    folders            image folders, decoded at every access (every epoch)
    folders in_ram     decoded once (in parallel) into one uint8 tensor
    folders cache 1st  from_cache, first run: decode + write <root>/cache/Imagenet{k}/{train,val}.pt
    folders cache 2nd  from_cache, later runs: memory-mapped, nothing decoded
    official           the official pickled files, unpickled into one uint8 tensor
    official cache 2nd from_cache, later runs: memory-mapped instead of unpickling

"start" is build_data (finding, reading, decoding files); "1st batch" the time to the first batch of epoch 1
(worker start-up); "epoch 1" / "epoch 2" the epochs' iteration times. Then the training step rate of FlexNet-5 in
the shape of the ImageNet-32 preset (net.type=ResNet no_hidden=22 no_blocks=5 block_width_factors=[1,1,1.5,2,2,2]
conv.horizon=33, 1000 classes) at the same batch size on the same device.

    python benchmarks/imagenet_loader.py                      # 20k images at 32 px, 2 workers, batch 64, CPU
    python benchmarks/imagenet_loader.py --images 100000 --workers 4 --batch-size 2048 --device cuda
    python benchmarks/imagenet_loader.py --skip-model --json out.json
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets import DataSpec, build_data  # noqa: E402
from datasets.imagenet import TRAIN_FILES, set_name  # noqa: E402


def write_folders(root: Path, size: int, n_train: int, n_val: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    name = set_name(size)
    for partition, count in (("train", n_train), ("val", n_val)):
        for i in range(count):
            folder = root / name / partition / f"n{i % 1000:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(image).save(folder / f"{i}.png")


def write_official(root: Path, size: int, n_train: int, n_val: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    name = set_name(size)
    (root / f"{name}_train").mkdir(parents=True, exist_ok=True)
    (root / f"{name}_val").mkdir(parents=True, exist_ok=True)
    for file, part in zip(TRAIN_FILES, np.array_split(np.arange(n_train), len(TRAIN_FILES))):
        entry = {"data": rng.integers(0, 256, (len(part), 3 * size * size), dtype=np.uint8),
                 "labels": (part % 1000 + 1).tolist()}
        (root / f"{name}_train" / file).write_bytes(pickle.dumps(entry, protocol=4))
    entry = {"data": rng.integers(0, 256, (n_val, 3 * size * size), dtype=np.uint8),
             "labels": (np.arange(n_val) % 1000 + 1).tolist()}
    (root / f"{name}_val" / "val_data").write_bytes(pickle.dumps(entry, protocol=4))


def time_loader(root: Path, size: int, args, epochs: int = 2, **storage) -> dict:
    spec = DataSpec(set_name(size), root=str(root), batch_size=args.batch_size, augment="resnet", protocol="paper",
                    num_workers=args.workers, **storage)
    start = time.perf_counter()
    data = build_data(spec)
    result = {"start_s": time.perf_counter() - start, "images": len(data.train_loader.dataset)}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        first = None
        for i, (x, y) in enumerate(data.train_loader):
            if first is None:
                first = time.perf_counter() - start
        result[f"epoch{epoch}_s"] = time.perf_counter() - start
        if epoch == 1:
            result["first_batch_s"] = first
    result["images_per_s"] = result["images"] / result[f"epoch{epochs}_s"]
    return result


def model_step_rate(size: int, args) -> dict:
    from models import ModelSpec, build_model, count_parameters

    spec = ModelSpec.from_dict({"net": {"type": "ResNet", "no_hidden": 22, "no_blocks": 5, "norm": "BatchNorm",
                                        "dropout": 0.2, "block_width_factors": (1, 1, 1.5, 2, 2, 2)},
                                "conv": {"type": "FlexConv", "horizon": size + 1}})
    device = torch.device(args.device)
    model = build_model(spec, 2, 3, 1000).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(args.batch_size, 3, size, size, device=device)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)

    def step():
        optimiser.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.model_steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.model_steps
    return {"params": count_parameters(model), "step_s": seconds, "images_per_s": args.batch_size / seconds,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000, help="training images (validation: a tenth)")
    parser.add_argument("--size", type=int, default=32, choices=(8, 16, 32, 64))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-steps", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--root", type=Path, default=None, help="where to write the data (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    results = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.root or Path(tmp)
        folders, official = base / "folders", base / "official"
        start = time.perf_counter()
        write_folders(folders, args.size, args.images, args.images // 10)
        write_official(official, args.size, args.images, args.images // 10)
        print(f"wrote {args.images} + {args.images // 10} images at {args.size} px in both layouts "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
        runs = [("folders", folders, {}), ("folders in_ram", folders, {"in_ram": True}),
                ("folders cache 1st", folders, {"from_cache": True}),
                ("folders cache 2nd", folders, {"from_cache": True}),
                ("official", official, {}), ("official cache 1st", official, {"from_cache": True}),
                ("official cache 2nd", official, {"from_cache": True})]
        print(f"{'storage':<20}{'start s':>9}{'1st batch s':>13}{'epoch 1 s':>11}{'epoch 2 s':>11}{'img/s':>9}")
        for label, root, storage in runs:
            r = time_loader(root, args.size, args, **storage)
            results[label] = r
            print(f"{label:<20}{r['start_s']:>9.2f}{r['first_batch_s']:>13.2f}{r['epoch1_s']:>11.2f}"
                  f"{r['epoch2_s']:>11.2f}{r['images_per_s']:>9.0f}", flush=True)
    if not args.skip_model:
        m = model_step_rate(args.size, args)
        results["model"] = m
        loader = max(results["folders in_ram"]["images_per_s"], results["official"]["images_per_s"])
        print(f"FlexNet-5 ({m['params']:,} params), batch {args.batch_size} on {args.device} "
              f"({m['threads']} threads): {m['step_s']:.3f} s/step = {m['images_per_s']:.0f} img/s; "
              f"loader (in memory, {args.workers} workers): {loader:.0f} img/s -> the "
              f"{'model' if m['images_per_s'] < loader else 'loader'} is the bottleneck")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
