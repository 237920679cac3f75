"""CIFAR-100 and STL-10: tiny files in the real on-disk formats (CIFAR-100's python pickles, STL-10's
binary files), read through the real code path offline, and each dataset through training, checkpoint
evaluation and (CIFAR-100) cross-resolution.

Every sample carries its id in pixel (0, 0) of the red channel, so a test can tell which image a loader
returned and check its label and its normalised pixels.
"""
from __future__ import annotations

import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets as D  # noqa: E402
from config import ConfigError, read_command  # noqa: E402
from datasets.registry import AUGMENT_NONE  # noqa: E402
from datasets.stl10 import read_stl10_split  # noqa: E402
from datasets.transforms import Cutout  # noqa: E402
from engine import crossres, experiment  # noqa: E402

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
STL_MEAN = torch.tensor([0.4467, 0.4398, 0.4066]).view(3, 1, 1)
STL_STD = torch.tensor([0.2603, 0.2566, 0.2713]).view(3, 1, 1)
TEST_ID0 = 100  # test ids 100.., train ids 0..: never collide
REAL_DOWNLOAD_URL = torchvision.datasets.utils.download_url
RUN = ["device=cpu", "wandb.mode=disabled", "train.plot_every=-1", "dataset_params.num_workers=0"]


# ----------------------------------------------------------------------------------------------------
# Fixtures: no network, tiny real-format files
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _offline(no_network):
    """Every torchvision download fails here, as it does offline (conftest.no_network)."""


@pytest.fixture
def md5_ignored(monkeypatch):
    """torchvision checks each file's md5 against the official archives, which tiny test files cannot match;
    accept any existing file instead (only the md5 comparison is bypassed)."""
    exists = lambda fpath, md5=None: os.path.isfile(fpath)  # noqa: E731
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.stl10, "check_integrity", exists)


def tagged_images(rng, n: int, side: int, id0: int) -> np.ndarray:
    """uint8 [n, 3, side, side] random images with the sample id in pixel (0, 0) of the red channel."""
    images = rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8)
    images[:, 0, 0, 0] = id0 + np.arange(n)
    return images


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 0):
    """CIFAR-100's pickles under root/cifar-100-python: ``train``/``test`` (rows of 1024 R, 1024 G, 1024 B
    values; ``fine_labels`` 0..99, ``coarse_labels`` 0..19) and ``meta`` (the label names)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train, test = tagged_images(rng, n_train, 32, 0), tagged_images(rng, n_test, 32, TEST_ID0)
    train_labels, test_labels = (np.arange(n_train) * 37) % 100, (np.arange(n_test) * 13 + 99) % 100
    for name, images, labels in (("train", train, train_labels), ("test", test, test_labels)):
        entry = {"filenames": [f"{name}_{i}.png" for i in range(len(images))], "batch_label": f"{name} batch",
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(),
                 "data": images.reshape(len(images), -1)}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"fine_label_names": [f"class_{i}" for i in range(100)],
            "coarse_label_names": [f"super_{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return train, train_labels, test, test_labels


def write_stl10(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0):
    """STL-10's binary files under root/stl10_binary: ``*_X.bin`` uint8 images stored channel after channel,
    each channel column-major (file order [N, C, W, H]); ``*_y.bin`` one byte per image, labels 1..10.
    Returns the images as [N, 3, H, W] and the 0-based labels."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = tagged_images(rng, n_train, 96, 0), tagged_images(rng, n_test, 96, TEST_ID0)
    train_labels, test_labels = np.arange(n_train) % 10, (np.arange(n_test) * 3 + 9) % 10
    for split, images, labels in (("train", train, train_labels), ("test", test, test_labels)):
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    return train, train_labels, test, test_labels


@pytest.fixture
def cifar100_root(tmp_path, md5_ignored):
    return tmp_path, write_cifar100(tmp_path)


@pytest.fixture
def stl10_root(tmp_path):
    return tmp_path, write_stl10(tmp_path)


def all_batches(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def normalise(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> ToTensor + Normalize of each image."""
    return (torch.from_numpy(images).float() / 255 - mean) / std


def ids(x: torch.Tensor, mean, std) -> list[int]:
    """Sample ids from pixel (0, 0) of the red channel of normalised [N, 3, H, W] images."""
    return torch.round((x[:, 0, 0, 0] * std[0, 0, 0] + mean[0, 0, 0]) * 255).long().tolist()


# ----------------------------------------------------------------------------------------------------
# Registry, metadata and options (no files)
# ----------------------------------------------------------------------------------------------------
def test_registered_after_cifar10_with_their_shapes():
    names = D.list_datasets()
    assert names.index("CIFAR10") < names.index("CIFAR100") < names.index("STL10")
    assert D.dataset_meta("CIFAR100") == D.DatasetMeta("CIFAR100", 2, 3, 100, (3, 32, 32))
    assert D.dataset_meta("CIFAR100", resolution=16).input_shape == (3, 16, 16)
    assert D.dataset_meta("STL10") == D.DatasetMeta("STL10", 2, 3, 10, (3, 96, 96))
    assert D.dataset_meta("STL10", resolution=48).input_shape == (3, 48, 48)


@pytest.mark.parametrize("name", ["CIFAR100", "STL10"])
def test_options_are_checked(name):
    spec = D.get_dataset_spec(name)
    assert spec.augment_choices == ("None", "resnet")
    with pytest.raises(ValueError, match="augment='standard'.*'None', 'resnet'"):
        spec.check_options(augment="standard", permuted=False, noise_padded=False, resolution=None,
                           interpolation="bilinear")
    for flag in ("permuted", "noise_padded"):
        with pytest.raises(ValueError, match=f"{flag}=True is not supported by dataset '{name}'"):
            D.build_data(name, synthetic=True, **{flag: True})


@pytest.mark.parametrize("name, classes, side", [("CIFAR100", 100, 32), ("STL10", 10, 96)])
def test_synthetic_stand_in_has_the_dataset_shapes(name, classes, side):
    data = D.build_data(name, synthetic=True, batch_size=16, augment="resnet", seed=3)
    x, y = all_batches(data.train_loader)
    assert x.shape == (D.SYNTHETIC_SIZES[0], 3, side, side) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < classes
    assert data.meta.num_classes == classes


def test_config_accepts_the_datasets_and_their_augmentations():
    for name in ("CIFAR100", "STL10"):
        for augment in ("None", "resnet"):
            spec = read_command([f"dataset={name}", f"train.augment={augment}", *RUN]).spec
            assert spec.data.name == name and spec.data.augment == augment
    spec = read_command(["dataset=STL10", "cross_res.resize=48", *RUN]).spec
    assert spec.data.meta().input_shape == (3, 48, 48)
    with pytest.raises(ConfigError) as info:
        read_command(["dataset=STL10", "train.augment=standard", *RUN])
    assert "train.augment='standard'" in str(info.value) and "'resnet'" in str(info.value)
    with pytest.raises(ConfigError, match="CIFAR100, STL10"):
        read_command(["dataset=CIFAR1000", *RUN])


# ----------------------------------------------------------------------------------------------------
# Normalisation and augmentations
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, mean, std", [("CIFAR100", IMAGENET_MEAN, IMAGENET_STD),
                                             ("STL10", STL_MEAN, STL_STD)])
def test_a_constant_image_normalises_with_the_dataset_statistics(name, mean, std):
    spec = D.get_dataset_spec(name)
    side = spec.image_size
    options = spec.check_options(augment=AUGMENT_NONE, permuted=False, noise_padded=False, resolution=None,
                                 interpolation="bilinear")
    _, evaluation = spec.transforms(options, {})
    for value in (0, 128, 255):
        out = evaluation(Image.new("RGB", (side, side), (value, value, value)))
        expected = ((value / 255 - mean) / std).expand(3, side, side)
        torch.testing.assert_close(out, expected)
    # Per-channel statistics: a different value in each channel.
    out = evaluation(Image.new("RGB", (side, side), (10, 100, 200)))
    expected = (torch.tensor([10, 100, 200]).view(3, 1, 1) / 255 - mean) / std
    torch.testing.assert_close(out, expected.expand(3, side, side))


def test_cifar100_loads_pickles_with_fine_labels_and_imagenet_statistics(cifar100_root):
    root, (train, train_labels, test, test_labels) = cifar100_root
    data = D.build_data("CIFAR100", root=root, batch_size=8, protocol="paper")
    assert data.meta.num_classes == 100
    x, y = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise(test, IMAGENET_MEAN, IMAGENET_STD))
    assert y.tolist() == test_labels.tolist() and int(y.max()) == 99
    x, y = all_batches(data.train_loader)  # shuffled
    got = ids(x, IMAGENET_MEAN, IMAGENET_STD)
    assert sorted(got) == list(range(len(train))) and y.tolist() == train_labels[got].tolist()


def test_cifar100_resizes_and_augments_like_cifar10(cifar100_root):
    root, (train, _, _, _) = cifar100_root
    small = D.build_data("CIFAR100", root=root, batch_size=8, resolution=16, protocol="paper")
    assert next(iter(small.test_loader))[0].shape == (8, 3, 16, 16)
    cifar10 = D.get_dataset_spec("CIFAR10").transforms(
        D.get_dataset_spec("CIFAR10").check_options(augment="resnet", permuted=False, noise_padded=False,
                                                    resolution=None, interpolation="bilinear"), {})[0]
    data = D.build_data("CIFAR100", root=root, batch_size=8, augment="resnet", protocol="paper", seed=1)
    assert repr(data.train_loader.dataset.transform) == repr(cifar10)
    x, _ = all_batches(data.train_loader)
    assert x.shape == (len(train), 3, 32, 32)
    plain = normalise(train, IMAGENET_MEAN, IMAGENET_STD)
    assert not torch.allclose(x.flatten().sort().values, plain.flatten().sort().values)  # crops / flips


def test_stl10_reads_the_binary_files_as_torchvision_does(stl10_root, md5_ignored):
    root, (train, train_labels, test, test_labels) = stl10_root
    data = D.build_data("STL10", root=root, batch_size=4, protocol="paper")
    x, y = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise(test, STL_MEAN, STL_STD))
    assert y.tolist() == test_labels.tolist() and set(train_labels.tolist()) == set(range(10))
    # Byte for byte what torchvision's STL10 reader returns (it insists on the unlabelled split's file).
    (root / "stl10_binary" / "unlabeled_X.bin").write_bytes(b"")
    reference = torchvision.datasets.STL10(str(root), split="train")
    ours = read_stl10_split(root / "stl10_binary", "train")
    assert len(ours) == len(reference) == len(train)
    for index in range(len(ours)):
        (mine, label), (theirs, their_label) = ours[index], reference[index]
        assert label == their_label == train_labels[index]
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))
    assert ours.targets.tolist() == train_labels.tolist()


@pytest.mark.parametrize("content, message", [
    ({"train_X.bin": b"\0" * 1000}, "train_X.bin' has 1000 bytes, but"),
    ({"test_y.bin": bytes([0] * 10)}, "test_y.bin' must hold labels 1..10 (one byte each), found values 0..0"),
    ({"test_y.bin": bytes([11] * 10)}, "found values 11..11"),
])
def test_stl10_bad_files_are_named(stl10_root, content, message):
    root, _ = stl10_root
    for name, data in content.items():
        (root / "stl10_binary" / name).write_bytes(data)
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("STL10", root=root, batch_size=4)
    assert message in str(info.value) and str(root / "stl10_binary") in str(info.value)


def test_cutout_zeroes_one_clipped_square_from_torch_rng():
    image = torch.randn(3, 96, 96).abs() + 1  # no zeros of its own
    cutout = Cutout(32)
    sizes = set()
    for seed in range(40):
        torch.manual_seed(seed)
        y, x = int(torch.randint(96, ())), int(torch.randint(96, ()))
        torch.manual_seed(seed)
        out = cutout(image)
        expected = torch.zeros(96, 96, dtype=torch.bool)
        expected[max(0, y - 16):min(96, y + 16), max(0, x - 16):min(96, x + 16)] = True
        assert torch.equal(out == 0, expected.expand(3, 96, 96)), seed
        assert torch.equal(out[~expected.expand(3, 96, 96)], image[~expected.expand(3, 96, 96)])
        sizes.add(int(expected.sum()))
    assert 32 * 32 in sizes and min(sizes) < 32 * 32  # whole holes and holes clipped at a border
    assert torch.count_nonzero(image == 0) == 0  # the input is not modified
    with pytest.raises(ValueError, match="length"):
        Cutout(0)


def test_cutout_is_picklable_and_follows_the_seed():
    cutout = pickle.loads(pickle.dumps(Cutout(32, holes=2)))
    assert (cutout.length, cutout.holes) == (32, 2) and repr(cutout) == "Cutout(length=32, holes=2)"
    image = torch.ones(3, 40, 40)
    torch.manual_seed(5)
    first = cutout(image)
    torch.manual_seed(5)
    assert torch.equal(first, cutout(image))
    assert 0 < torch.count_nonzero(first == 0) <= 3 * 2 * 32 * 32


def zero_boxes(x: torch.Tensor) -> list[tuple[int, int]]:
    """(height, width) of the all-channel zero region of each image [N, 3, H, W]; asserts it is a rectangle."""
    boxes = []
    for image in x:
        zero = (image == 0).all(0)
        assert torch.equal(zero, (image == 0).any(0))  # zero in every channel or none
        rows, cols = torch.nonzero(zero.any(1)).flatten(), torch.nonzero(zero.any(0)).flatten()
        h, w = len(rows), len(cols)
        assert h and w and int(zero.sum()) == h * w  # one rectangle
        assert rows[-1] - rows[0] + 1 == h and cols[-1] - cols[0] + 1 == w
        boxes.append((h, w))
    return boxes


def test_stl10_resnet_augmentation_crops_flips_and_cuts_out_seeded_in_workers(stl10_root):
    root, (train, _, _, _) = stl10_root

    def batches(seed):
        data = D.build_data("STL10", root=root, batch_size=10, augment="resnet", seed=seed, num_workers=2,
                            protocol="paper")
        return all_batches(data.train_loader), data

    (x1, y1), data = batches(0)
    (x2, y2), _ = batches(0)
    (x3, _), _ = batches(1)
    assert x1.shape == (len(train), 3, 96, 96)
    torch.testing.assert_close(x1, x2)
    assert torch.equal(y1, y2) and not torch.equal(x1, x3)
    transform = repr(data.train_loader.dataset.transform)
    assert "RandomCrop(size=(96, 96), padding=12)" in transform and "RandomHorizontalFlip(p=0.5)" in transform
    assert transform.index("Normalize") < transform.index("Cutout(length=32, holes=1)")
    # Exact zeros come only from cutout (no uint8 pixel equals the mean after normalisation): one hole
    # per image, 32 x 32 or clipped at a border (at least 16 each way: the centre lies in the image).
    boxes = zero_boxes(x1)
    assert all(16 <= h <= 32 and 16 <= w <= 32 for h, w in boxes)
    # Eval transforms: no augmentation.
    x, _ = all_batches(data.test_loader)
    assert torch.count_nonzero(x == 0) == 0
    # At another resolution the hole scales with the image: 16 x 16 at 48 x 48.
    small = D.build_data("STL10", root=root, batch_size=10, augment="resnet", resolution=48, num_workers=0,
                         protocol="paper")
    x, _ = next(iter(small.train_loader))
    assert x.shape == (10, 3, 48, 48) and max(max(box) for box in zero_boxes(x)) <= 16


# ----------------------------------------------------------------------------------------------------
# Missing files offline
# ----------------------------------------------------------------------------------------------------
def test_missing_cifar100_offline_names_the_files_and_where(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("CIFAR100", root=tmp_path, batch_size=4)
    message = str(info.value)
    assert "'CIFAR100'" in message and str(tmp_path / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message and "(train, test, meta)" in message and "internet" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_stl10_offline_names_the_files_and_where(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("STL10", root=tmp_path, batch_size=4)
    message = str(info.value)
    folder = tmp_path / "stl10_binary"
    assert "'STL10'" in message and f"into '{folder}'" in message and f"into '{tmp_path}'" in message
    assert "stl10_binary.tar.gz" in message and "internet" in message and "offline (test)" in message
    assert "Missing: train_X.bin, train_y.bin, test_X.bin, test_y.bin." in message
    # Only the missing ones are listed when some are there.
    write_stl10(tmp_path)
    (folder / "test_y.bin").unlink()
    with pytest.raises(D.DatasetNotAvailableError, match=r"Missing: test_y\.bin\. "):
        D.build_data("STL10", root=tmp_path, batch_size=4)


def test_stl10_archive_in_the_root_is_extracted_offline(tmp_path, monkeypatch):
    """The official archive put into the root is used by torchvision's downloader without the network."""
    staging = tmp_path / "staging"
    _, _, test, test_labels = write_stl10(staging)
    with tarfile.open(tmp_path / "stl10_binary.tar.gz", "w:gz") as archive:
        archive.add(staging / "stl10_binary", arcname="stl10_binary")
    utils = torchvision.datasets.utils
    monkeypatch.setattr(utils, "download_url", REAL_DOWNLOAD_URL)  # the real one, offline below it
    monkeypatch.setattr(utils, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))  # tiny archive
    monkeypatch.setattr(utils, "_get_redirect_url", lambda url, **kwargs: pytest.fail("went online"))
    monkeypatch.setattr(utils, "_urlretrieve", lambda *args, **kwargs: pytest.fail("went online"))
    data = D.build_data("STL10", root=tmp_path, batch_size=4, protocol="paper")
    x, y = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise(test, STL_MEAN, STL_STD))
    assert y.tolist() == test_labels.tolist()


# ----------------------------------------------------------------------------------------------------
# Training, checkpoint evaluation, cross-resolution
# ----------------------------------------------------------------------------------------------------
TINY_MODEL = ["experiment=dev/flexnet_cifar10_tiny", "net.no_hidden=4", "kernel.no_hidden=8", "conv.horizon=9",
              "train.epochs=1", "train.limit_train_batches=2", "train.limit_eval_batches=1"]


@pytest.mark.parametrize("name, batch", [("CIFAR100", 8), ("STL10", 4)])
def test_tiny_training_run_and_checkpoint_evaluation(name, batch, tmp_path, md5_ignored):
    root = tmp_path / "data"
    if name == "CIFAR100":
        write_cifar100(root)
    else:
        write_stl10(root)
    data = [f"dataset={name}", f"dataset_params.root={root}", f"train.batch_size={batch}"]
    summary = experiment.run(read_command([*TINY_MODEL, *data, "train.augment=resnet", *RUN]), tmp_path / "run")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    assert checkpoint["config"]["dataset"] == name
    evaluated = experiment.run(read_command(["train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                                             f"dataset_params.root={root}", "train.limit_eval_batches=1", *RUN]),
                               tmp_path / "eval")
    assert evaluated["status"] == "evaluated"
    assert evaluated["test_accuracy"] == summary["test_accuracy"]
    assert evaluated["no_params"] == summary["no_params"]


@pytest.mark.parametrize("name, source, target", [("CIFAR100", 8, 16), ("STL10", 24, 48)])
def test_cross_resolution(name, source, target, tmp_path, md5_ignored):
    root = tmp_path / "data"
    (write_cifar100 if name == "CIFAR100" else write_stl10)(root)
    overrides = ["experiment=dev/crossres_cifar10_tiny", f"dataset={name}", f"dataset_params.root={root}",
                 "net.no_hidden=4", "kernel.no_hidden=8", f"cross_res.source_res={source}",
                 f"cross_res.target_res={target}", "train.epochs=1", "cross_res.finetune_epochs=1",
                 "train.batch_size=4", "train.limit_train_batches=1", "train.limit_eval_batches=1", *RUN]
    reader = read_command(overrides, entry="run_crossres")
    summary = crossres.run(reader, tmp_path / "run")
    assert (summary["status"], summary["phase"], summary["epochs_completed"]) == ("completed", "done", 2)
    for phase, resolution in (("source", source), ("finetune", target)):  # each phase's data at its resolution
        images, _ = next(iter(D.build_data(crossres.phase_spec(reader.spec, phase).data).test_loader))
        assert tuple(images.shape[1:]) == (3, resolution, resolution), phase
    for key in ("source_accuracy", "ootb_accuracy", "final_accuracy"):
        assert 0.0 <= summary[key] <= 1.0, key
    # Each phase trained at its own resolution: the kernel grids are resolution + 1.
    for phase, resolution in (("source", source), ("finetune", target)):
        stored = torch.load(tmp_path / "run" / phase / "checkpoints" / "best.pt", map_location="cpu",
                            weights_only=True)
        assert stored["model_spec"]["conv"]["horizon"] == resolution + 1, phase
