"""Downsampled ImageNet (Imagenet8/16/32/64, Imagenet-k), offline, on tiny files in both real layouts.

Official files: pickled dicts with ``data`` (uint8 rows, channel-major) and 1-based ``labels`` under
``<root>/Imagenet{k}_train/train_data_batch_1..10`` and ``<root>/Imagenet{k}_val/val_data``. Image folders:
``<root>/Imagenet{k}/{train,val}/<class>/<image>.png``. Every image carries its sample id in pixel (0, 0) of the red
plane and its label in the green plane, so tests can tell which samples a loader returns.
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets as D
from datasets import imagenet as I
from config import ConfigError, read_command

MEAN = torch.tensor(I.MEAN).view(3, 1, 1)
STD = torch.tensor(I.STD).view(3, 1, 1)


# --- tiny files --------------------------------------------------------------------------------------------------
def image_rows(ids, labels, size: int) -> np.ndarray:
    """[n, 3*k*k] uint8 rows: red plane random with the id in pixel (0, 0), green plane = label, blue = 7."""
    rng = np.random.default_rng(len(ids) + size)
    images = rng.integers(0, 256, (len(ids), 3, size, size), dtype=np.uint8)
    images[:, 0, 0, 0] = np.asarray(ids) % 256
    images[:, 1] = (np.asarray(labels) % 256)[:, None, None]
    images[:, 2] = 7
    return images.reshape(len(ids), 3 * size * size)


def write_official(root: Path, size: int, labels_train, labels_val) -> Path:
    """The official files (labels 1-based, as given); training rows spread over the 10 batch files."""
    name = f"Imagenet{size}"
    (root / f"{name}_train").mkdir(parents=True)
    (root / f"{name}_val").mkdir(parents=True)
    parts = np.array_split(np.arange(len(labels_train)), 10)
    for i, part in enumerate(parts, start=1):
        labels = [int(labels_train[j]) for j in part]
        entry = {"data": image_rows(part, labels, size), "labels": labels, "mean": np.zeros(3 * size * size)}
        (root / f"{name}_train" / f"train_data_batch_{i}").write_bytes(pickle.dumps(entry, protocol=2))
    ids = 1000 + np.arange(len(labels_val))
    entry = {"data": image_rows(ids, labels_val, size), "labels": [int(v) for v in labels_val]}
    (root / f"{name}_val" / "val_data").write_bytes(pickle.dumps(entry, protocol=2))
    return root


def write_folders(root: Path, size: int, classes, per_class_train: int = 1, per_class_val: int = 1) -> Path:
    """Image folders with PNGs; class folder i gets green = i."""
    name = f"Imagenet{size}"
    sample = 0
    for partition, count in (("train", per_class_train), ("val", per_class_val)):
        for label, cls in enumerate(classes):
            folder = root / name / partition / cls
            folder.mkdir(parents=True)
            for j in range(count):
                rows = image_rows([sample], [label], size).reshape(3, size, size)
                Image.fromarray(rows.transpose(1, 2, 0)).save(folder / f"img{j}.png")
                sample += 1
    return root


WNIDS = [f"n{i:08d}" for i in range(1000)]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Data roots: official files for 8 and 32 px (1000 classes), image folders for 8 and 32 px (1000 classes),
    and an Imagenet-k root with 5 classes as folders at 8 and 16 px and a 3-class subset of official files at 32."""
    official = tmp_path_factory.mktemp("official")
    labels = np.arange(40) % 1000 + 1
    labels[5] = 1000  # the last class
    for size in (8, 32):
        write_official(official, size, labels, np.array([1, 2, 1000, 500]))
    folders = tmp_path_factory.mktemp("folders")
    for size in (8, 32):
        write_folders(folders, size, WNIDS, per_class_train=1, per_class_val=0)
        for cls in WNIDS[:3]:  # a small validation set
            write_val = folders / f"Imagenet{size}" / "val" / cls
            write_val.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((size, size, 3), 9, np.uint8)).save(write_val / "v.png")
    subset = tmp_path_factory.mktemp("subset")
    for size in (8, 16):
        write_folders(subset, size, ["cat", "dog", "eel", "fox", "gnu"], per_class_train=4, per_class_val=2)
    write_official(subset, 32, np.array([3, 7, 9] * 6), np.array([3, 7, 9]))
    return {"official": official, "folders": folders, "subset": subset}


def raw(name: str, root: Path, **options):
    spec = D.get_dataset_spec(name)
    opts = spec.check_options(augment=None, permuted=False, noise_padded=False,
                              resolution=options.pop("resolution", None), interpolation="bilinear")
    return spec.load_data(root, opts, **options)


# --- the two layouts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 32])
def test_official_files_shapes_channels_and_labels(roots, size):
    train, val = raw(f"Imagenet{size}", roots["official"])
    assert isinstance(train, I.UInt8Images) and train.images.shape == (40, 3, size, size)
    assert train.images.dtype == torch.uint8 and len(val) == 4
    labels = np.arange(40) % 1000
    labels[5] = 999  # 1-based 1000 -> 0-based 999
    assert train.targets.tolist() == labels.tolist()
    assert val.targets.tolist() == [0, 1, 999, 499]
    # channel-major rows: red plane first (id in pixel 0), then green (label), then blue (7)
    assert train.images[:, 0, 0, 0].tolist() == list(range(40))
    assert torch.equal(train.images[:, 1, 3, 2].long(), torch.tensor([int(v + 1) % 256 for v in labels]))
    assert bool((train.images[:, 2] == 7).all())
    meta = D.DataSpec(f"Imagenet{size}", root=str(roots["official"])).meta()
    assert (meta.input_shape, meta.num_classes) == ((3, size, size), 1000)


@pytest.mark.parametrize("size", [8, 32])
def test_image_folders_read_lazily_and_in_ram(roots, size):
    train, val = raw(f"Imagenet{size}", roots["folders"])
    assert isinstance(train, I.ImageFiles) and len(train) == 1000 and len(val) == 3
    image, label = train[999]
    assert image.shape == (3, size, size) and image.dtype == torch.uint8 and label == 999
    assert int(image[1, 0, 0]) == 999 % 256 and train.classes == WNIDS
    in_ram, _ = raw(f"Imagenet{size}", roots["folders"], in_ram=True)
    assert isinstance(in_ram, I.UInt8Images) and in_ram.images.shape == (1000, 3, size, size)
    assert torch.equal(in_ram.images[17], train[17][0]) and torch.equal(in_ram.targets, train.targets)
    # dataset_params.root may name the set's own folder (the original's convention)
    folder = roots["folders"] / f"Imagenet{size}"
    assert I.locate(folder, size, f"Imagenet{size}") == I.locate(roots["folders"], size, f"Imagenet{size}")


def test_full_imagenet_keys_need_the_1000_classes_of_a_folder_tree(roots):
    with pytest.raises(D.DatasetNotAvailableError, match="5 class folders.*dataset=Imagenet-k"):
        raw("Imagenet16", roots["subset"])


def test_imagenet_k_reads_the_classes_and_the_stored_size(roots):
    root = roots["subset"]
    spec = D.DataSpec("Imagenet-k", root=str(root), resolution=16)
    meta = spec.meta()
    assert (meta.input_shape, meta.num_classes) == ((3, 16, 16), 5)
    assert spec.meta(8).input_shape == (3, 8, 8)
    # official files with a label subset {3, 7, 9}: three classes, labels 0..2 in order
    at32 = spec.at_resolution(32)
    assert at32.resolution is None and at32.meta().num_classes == 3
    train, val = raw("Imagenet-k", root)
    assert train.targets.tolist() == [0, 1, 2] * 6 and val.classes == ["3", "7", "9"]
    data = D.build_data(dataclasses.replace(spec.at_resolution(8), num_workers=0))
    x, y = next(iter(data.train_loader))
    assert x.shape[1:] == (3, 8, 8) and data.meta.num_classes == 5 and int(y.max()) < 5
    # the green plane holds the class index: normalised back, it matches the label
    green = torch.round((x[:, 1, 0, 0] * STD[1, 0, 0] + MEAN[1, 0, 0]) * 255).long()
    assert torch.equal(green, y)
    # no stored set at 24 px; synthetic data needs no files and reports 1000 classes
    with pytest.raises(ValueError, match="stored size"):
        spec.at_resolution(24)
    assert D.DataSpec("Imagenet-k", synthetic=True, resolution=16).meta().num_classes == 1000
    # the original's root convention: <...>/Imagenet-k stands for <...>/Imagenet{r}
    assert D.DataSpec("Imagenet-k", root=str(root / "Imagenet-k"), resolution=16).meta().num_classes == 5


def test_imagenet_k_root_of_the_published_command(tmp_path):
    """dataset_params.root=<...>/Imagenet-k/raw-data: each resolution reads <...>/Imagenet{r}/raw-data/{train,val}."""
    for size, classes in ((8, ["a", "b"]), (16, ["a", "b", "c"])):
        write_folders(tmp_path / "build", size, classes, per_class_train=2, per_class_val=1)
        (tmp_path / f"Imagenet{size}").mkdir()
        (tmp_path / "build" / f"Imagenet{size}").rename(tmp_path / f"Imagenet{size}" / "raw-data")
    spec = D.DataSpec("Imagenet-k", root=str(tmp_path / "Imagenet-k" / "raw-data"))
    assert spec.at_resolution(8).meta().num_classes == 2 and spec.at_resolution(16).meta().num_classes == 3
    train, _ = raw("Imagenet-k", tmp_path / "Imagenet-k" / "raw-data", resolution=16)
    assert train.folder == tmp_path / "Imagenet16" / "raw-data" / "train" and len(train) == 6
    with pytest.raises(D.DatasetNotAvailableError, match="Imagenet-k in dataset_params.root stands for Imagenet32"):
        spec.meta()


def test_resnet_augment_pads_with_zeros_crops_and_flips():
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    pipeline = I.UInt8ImagePipeline(16, augment=True)
    padded = torch.nn.functional.pad(image, (2, 2, 2, 2)).float().div(255).sub(MEAN).div(STD)
    windows = [padded[:, y:y + 16, x:x + 16] for y in range(5) for x in range(5)]
    windows += [w.flip(-1) for w in windows]
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        out = pipeline(image)
        matches = [i for i, w in enumerate(windows) if torch.allclose(out, w, atol=1e-5)]
        assert matches
        seen.add(matches[0])
    assert len(seen) > 10  # crops and flips vary
    plain = I.UInt8ImagePipeline(8, augment=False)(image)  # resized to 8 (Imagenet16 with resolution=8)
    assert plain.shape == (3, 8, 8)


# --- in_ram / from_cache ---------------------------------------------------------------------------------------------
def batches(root: Path, num_workers: int = 0, **storage):
    data = D.build_data(D.DataSpec("Imagenet-k", root=str(root), resolution=16, batch_size=7, augment="resnet",
                                   num_workers=num_workers, seed=3, **storage))
    torch.manual_seed(0)
    return [(x, y) for x, y in data.train_loader] + [(x, y) for x, y in data.test_loader]


def assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_in_ram_and_from_cache_give_the_same_batches(roots, tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_folders(root, 16, ["a", "b", "c"], per_class_train=5, per_class_val=2)
    reference = batches(root)
    assert_same(reference, batches(root, in_ram=True))
    assert_same(reference, batches(root, from_cache=True))           # decodes and writes the cache
    cache = root / "cache" / "Imagenet16" / "train.pt"
    assert cache.is_file() and (root / "cache" / "Imagenet16" / "val.pt").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image file although the cache exists")

    monkeypatch.setattr(I, "decode_image", no_decoding)
    assert_same(reference, batches(root, from_cache=True))           # memory-mapped, nothing decoded
    assert_same(reference, batches(root, from_cache=True, in_ram=True))
    monkeypatch.undo()
    # a changed source rebuilds the cache
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "Imagenet16" / "train" / "a" / "extra.png")
    train, _ = raw("Imagenet-k", root, resolution=16, from_cache=True)
    assert len(train) == 16 and train.cache_path == cache


def test_workers_share_the_cache_and_repeat_the_batches(roots, tmp_path):
    """Two worker processes: the same batches from image files and from the memory-mapped cache (which a pickled
    copy reopens by path instead of carrying the images)."""
    root = tmp_path / "root"
    write_official(root, 16, np.arange(1, 31) % 4 + 1, np.array([1, 2, 3, 4]))
    assert_same(batches(root, num_workers=2), batches(root, num_workers=2, from_cache=True))
    train, _ = raw("Imagenet-k", root, resolution=16, from_cache=True)
    copy = pickle.loads(pickle.dumps(train))
    assert len(pickle.dumps(train)) < 4000 and torch.equal(copy.images, train.images)


# --- offline errors ---------------------------------------------------------------------------------------------------
def test_missing_files_name_both_layouts_and_where_they_go(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("Imagenet32", root=str(tmp_path))
    message = str(info.value)
    for part in (f"{tmp_path}/Imagenet32_train/train_data_batch_1", "train_data_batch_10",
                 f"{tmp_path}/Imagenet32_val/val_data", f"{tmp_path}/Imagenet32/train/<class>/<image>",
                 f"{tmp_path}/Imagenet32/val/<class>/<image>", "dataset_params.root"):
        assert part in message
    write_official(tmp_path, 32, np.array([1] * 10), np.array([1]))
    (tmp_path / "Imagenet32_train" / "train_data_batch_4").unlink()
    with pytest.raises(D.DatasetNotAvailableError, match="incomplete.*train_data_batch_4"):
        D.build_data("Imagenet32", root=str(tmp_path))
    with pytest.raises(D.DatasetNotAvailableError, match="Imagenet64"):
        D.DataSpec("Imagenet-k", root=str(tmp_path), resolution=64).meta()
    write_official(tmp_path, 16, np.array([1, 2, 5]), np.array([1, 2]))  # a training class the val file lacks
    with pytest.raises(D.DatasetNotAvailableError, match="train_data_batch_1.*label 5 is not one of the 2 classes"):
        raw("Imagenet-k", tmp_path, resolution=16)


# --- through the config and the engine ------------------------------------------------------------------------------
TINY_FLEXNET = ["net.type=ResNet", "net.no_hidden=4", "net.no_blocks=1", "kernel.no_hidden=4", "net.dropout=0.0",
                "conv.type=FlexConv", "train.batch_size=8", "train.epochs=1", "train.limit_train_batches=2",
                "dataset_params.num_workers=0", "device=cpu", "wandb.mode=disabled", "train.report_top5_acc=True"]


@pytest.mark.parametrize("root_name, dataset", [("subset", ["dataset=Imagenet-k", "cross_res.resize=8"]),
                                               ("official", ["dataset=Imagenet8", "protocol=paper"])])
def test_train_and_evaluate_a_checkpoint(roots, tmp_path, root_name, dataset):
    from engine.experiment import run

    root = roots[root_name]
    overrides = TINY_FLEXNET + dataset + [f"dataset_params.root={root}", "conv.horizon=9", "dataset_params.in_ram=True",
                                          "train.augment=resnet"]
    reader = read_command(overrides)
    assert reader.spec.data.in_ram and reader.spec.data.meta().input_shape == (3, 8, 8)
    summary = run(reader, tmp_path / "train")
    assert summary["status"] == "completed" and summary["no_params"] > 0
    best = next((tmp_path / "train").rglob("best.pt"))
    evaluation = run(read_command(["train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                                   f"dataset_params.root={root}", "device=cpu", "wandb.mode=disabled",
                                   "dataset_params.from_cache=True"]), tmp_path / "eval")
    assert evaluation["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert (root / "cache" / "Imagenet8" / "val.pt").is_file()


def test_config_keys_and_crossres_resolutions():
    spec = read_command(["dataset=Imagenet32", "dataset_params.from_cache=True"]).spec
    assert spec.data.from_cache and not spec.data.in_ram and spec.data.meta().num_classes == 1000
    with pytest.raises(ConfigError, match="cross_res.source_res.*stored size"):
        read_command(["experiment=dev/crossres_cifar10_tiny", "dataset=Imagenet-k", "cross_res.source_res=24"],
                     entry="run_crossres")
    with pytest.raises(ConfigError, match="cross_res.resize"):
        read_command(["dataset=Imagenet-k", "cross_res.resize=20"])
    assert D.DataSpec("CIFAR10").at_resolution(32).resolution is None
    assert D.DataSpec("CIFAR10").at_resolution(16).resolution == 16


def test_crossres_phases_read_the_stored_sets(roots, tmp_path):
    """run_crossres.py dataset=Imagenet-k: the source phase reads Imagenet8, fine-tuning Imagenet16 (no resampling)."""
    from engine import crossres

    overrides = ["experiment=dev/crossres_cifar10_tiny"] + TINY_FLEXNET + ["dataset=Imagenet-k", "net.no_blocks=2",
                                f"dataset_params.root={roots['subset']}", "cross_res.source_res=8",
                                "cross_res.target_res=16", "cross_res.finetune_epochs=1", "train.limit_eval_batches=1"]
    reader = read_command(overrides, entry="run_crossres")
    source, target = (crossres.phase_spec(reader.spec, phase) for phase in crossres.PHASES)
    assert (source.data.resolution, target.data.resolution) == (8, 16)
    assert source.data.meta().input_shape == (3, 8, 8) and target.data.meta().num_classes == 5
    summary = crossres.run(reader, tmp_path)
    assert summary["status"] == "completed" and summary["source_res"] == 8 and summary["target_res"] == 16
    assert 0 <= summary["final_accuracy"] <= 1
