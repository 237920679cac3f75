"""Tests of the datasets package, without network.

Tiny files in the real on-disk formats (gzipped IDX for MNIST / Fashion-MNIST, python pickles for
CIFAR-10) are written into a temporary root and read through the real torchvision code path. Every
image carries its sample id in pixel (0, 0), so tests can tell which samples a loader returns.
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: repo root on path

import datasets as D  # noqa: E402
from datasets import mnist_1d  # noqa: E402

MNIST_STATS = (0.1307, 0.3081)
FASHION_STATS = (0.2860, 0.3530)
CIFAR_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
CIFAR_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
N_TRAIN, N_TEST, TEST_ID0 = 60, 20, 100  # test ids 100..119, so train and test ids never collide
ALL_KEYS = {"MNIST", "sMNIST", "CIFAR10", "sCIFAR10", "MNIST1D", "FashionMNIST", "sFashionMNIST", "CIFAR100", "STL10"}
ALL_KEYS |= {"Imagenet8", "Imagenet16", "Imagenet32", "Imagenet64", "Imagenet-k"}  # datasets/imagenet.py
ALL_KEYS |= {"SpeechCommands", "CharTrajectories", "AddProblem", "CopyMemory"}    # the sequence datasets


# ----------------------------------------------------------------------------------------------------
# Fixtures: no network, tiny real-format files
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _offline(no_network):
    """Every torchvision download fails here, as it does offline (conftest.no_network)."""


@pytest.fixture
def cifar_md5_ignored(monkeypatch):
    """torchvision's CIFAR10 checks each file's md5 against the official archive, which tiny test
    files cannot match; accept any existing file instead (only the md5 comparison is bypassed)."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 dims, then the raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def idx_arrays(seed: int):
    """(train images [60, 28, 28], train labels, test images [20, 28, 28], test labels) with ids in pixel (0, 0)."""
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
    train[:, 0, 0] = np.arange(N_TRAIN)
    test[:, 0, 0] = TEST_ID0 + np.arange(N_TEST)
    return train, np.arange(N_TRAIN) % 10, test, np.arange(N_TEST) % 10


def write_idx_files(folder: Path, arrays) -> None:
    train, train_labels, test, test_labels = arrays
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", train)
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", test)
    write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", test_labels)


@pytest.fixture
def mnist_root(tmp_path):
    """(root, arrays) with MNIST's raw .gz files under root/MNIST/raw, as torchvision downloads them."""
    arrays = idx_arrays(0)
    write_idx_files(tmp_path / "MNIST" / "raw", arrays)
    return tmp_path, arrays


@pytest.fixture
def fashion_root(tmp_path):
    arrays = idx_arrays(1)
    write_idx_files(tmp_path / "FashionMNIST" / "raw", arrays)
    return tmp_path, arrays


@pytest.fixture
def cifar_root(tmp_path, cifar_md5_ignored):
    """(root, train images [50, 3, 32, 32], train labels, test images [20, 3, 32, 32], test labels)
    as CIFAR-10's python pickles (rows: 1024 R, 1024 G, 1024 B values) under root/cifar-10-batches-py."""
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    n_train = 50
    train = rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8)
    test = rng.integers(0, 256, (N_TEST, 3, 32, 32), dtype=np.uint8)
    train[:, 0, 0, 0] = np.arange(n_train)
    test[:, 0, 0, 0] = TEST_ID0 + np.arange(N_TEST)
    train_labels, test_labels = np.arange(n_train) % 10, np.arange(N_TEST) % 10
    for b in range(5):
        part = slice(10 * b, 10 * (b + 1))
        batch = {"batch_label": f"training batch {b + 1} of 5", "data": train[part].reshape(10, -1),
                 "labels": train_labels[part].tolist()}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    batch = {"batch_label": "testing batch 1 of 1", "data": test.reshape(N_TEST, -1), "labels": test_labels.tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}, protocol=2))
    return tmp_path, (train, train_labels, test, test_labels)


@pytest.fixture(scope="session")
def mnist1d_root(tmp_path_factory):
    """A data root with MNIST-1D generated and cached once per test session (takes a few seconds)."""
    root = tmp_path_factory.mktemp("mnist1d_root")
    mnist_1d.load_mnist1d(root)
    return root


def all_batches(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def normalise_grey(images: np.ndarray, stats) -> torch.Tensor:
    """uint8 [N, H, W] -> [N, 1, H, W] as ToTensor + Normalize compute it."""
    mean, std = stats
    return ((torch.from_numpy(images).float() / 255 - mean) / std).unsqueeze(1)


def normalise_rgb(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> normalised [N, 3, H, W] (ImageNet statistics)."""
    return (torch.from_numpy(images).float() / 255 - CIFAR_MEAN) / CIFAR_STD


def ids_grey(x: torch.Tensor, stats=MNIST_STATS) -> list[int]:
    """Sample ids from pixel (0, 0) of normalised [N, 1, H, W] images."""
    mean, std = stats
    return torch.round((x[:, 0, 0, 0] * std + mean) * 255).long().tolist()


def ids_rgb(x: torch.Tensor) -> list[int]:
    return torch.round((x[:, 0, 0, 0] * CIFAR_STD[0, 0, 0] + CIFAR_MEAN[0, 0, 0]) * 255).long().tolist()


# ----------------------------------------------------------------------------------------------------
# Registry and metadata (no files)
# ----------------------------------------------------------------------------------------------------
def test_registry_has_exactly_the_dataset_keys():
    assert set(D.list_datasets()) == ALL_KEYS


@pytest.mark.parametrize(
    "name, kwargs, data_dim, channels, shape",
    [
        ("MNIST", {}, 2, 1, (1, 28, 28)),
        ("MNIST", {"resolution": 14}, 2, 1, (1, 14, 14)),
        ("sMNIST", {}, 1, 1, (1, 784)),
        ("sMNIST", {"permuted": True}, 1, 1, (1, 784)),
        ("FashionMNIST", {}, 2, 1, (1, 28, 28)),
        ("sFashionMNIST", {"permuted": True}, 1, 1, (1, 784)),
        ("CIFAR10", {}, 2, 3, (3, 32, 32)),
        ("CIFAR10", {"resolution": 16}, 2, 3, (3, 16, 16)),
        ("sCIFAR10", {}, 1, 3, (3, 1024)),
        ("sCIFAR10", {"noise_padded": True}, 1, 96, (96, 1000)),
        ("MNIST1D", {}, 1, 1, (1, 40)),
    ],
)
def test_dataset_meta_needs_no_files(name, kwargs, data_dim, channels, shape):
    meta = D.dataset_meta(name, **kwargs)
    assert (meta.name, meta.data_dim, meta.in_channels, meta.num_classes, meta.input_shape) == (
        name, data_dim, channels, 10, shape)
    assert meta.length == shape[-1]
    with pytest.raises(Exception):  # frozen
        meta.num_classes = 3


def test_unknown_dataset_lists_registered_names():
    with pytest.raises(ValueError) as info:
        D.dataset_meta("ImageNet")
    assert "ImageNet" in str(info.value) and all(key in str(info.value) for key in ALL_KEYS)
    with pytest.raises(ValueError, match="ImageNet"):
        D.build_data("ImageNet", root=None, batch_size=4, synthetic=True)


@pytest.mark.parametrize(
    "name, kwargs, must_mention",
    [
        ("MNIST", {"augment": "resnet"}, ["'resnet'", "'standard'", "'None'"]),
        ("CIFAR10", {"augment": "standard"}, ["'standard'", "'resnet'"]),
        ("MNIST1D", {"augment": "resnet"}, ["'resnet'", "'None'"]),
        ("MNIST", {"protocol": "test"}, ["'test'", "'clean'", "'paper'"]),
        ("CIFAR10", {"permuted": True}, ["permuted", "sMNIST", "sFashionMNIST"]),
        ("sMNIST", {"noise_padded": True}, ["noise_padded", "sCIFAR10"]),
        ("sMNIST", {"resolution": 14}, ["resolution=14", "MNIST", "CIFAR10"]),
        ("MNIST", {"resolution": 0}, ["0"]),
        ("MNIST", {"interpolation": "bicubic"}, ["'bicubic'", "bilinear", "nearest"]),
        ("MNIST", {"val_fraction": 1.5}, ["1.5"]),
        ("MNIST", {"batch_size": 0}, ["batch_size", "0"]),
    ],
)
def test_invalid_options_name_value_and_allowed(name, kwargs, must_mention):
    kwargs = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError) as info:
        D.build_data(name, root=None, synthetic=True, **kwargs)
    for text in must_mention:
        assert text in str(info.value)


def test_default_root_is_project_data_dir():
    assert D.DEFAULT_DATA_ROOT == Path(D.__file__).resolve().parents[1] / "data"


def test_atomic_write_replaces_only_on_success(tmp_path):
    from datasets.paths import atomic_write

    path = tmp_path / "sub" / "cache.txt"
    with atomic_write(path, "w") as handle:  # creates the folder
        handle.write("first")
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_write(path, "w") as handle:
            handle.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "first"  # the previous file is intact, and no temporary file is left
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.txt"]
    with atomic_write(path) as handle:  # binary by default
        handle.write(b"second")
    assert path.read_bytes() == b"second" and sorted(p.name for p in path.parent.iterdir()) == ["cache.txt"]


def test_data_spec_and_name_with_options_build_the_same_data():
    spec = D.DataSpec("MNIST1D", batch_size=8, synthetic=True, seed=3)
    assert spec.meta() == D.dataset_meta("MNIST1D")
    by_spec = D.build_data(spec)
    by_name = D.build_data("MNIST1D", batch_size=8, synthetic=True, seed=3)
    for a, b in ((by_spec.train_loader, by_name.train_loader), (by_spec.test_loader, by_name.test_loader)):
        (xa, ya), (xb, yb) = next(iter(a)), next(iter(b))
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.shape == (8, 1, 40)
    assert D.PROTOCOLS == ("clean", "paper") and "bilinear" in D.INTERPOLATION_MODES


# ----------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST from IDX files
# ----------------------------------------------------------------------------------------------------
def test_mnist_loads_real_idx_files_and_normalises(mnist_root):
    root, (train, train_labels, test, test_labels) = mnist_root
    data = D.build_data("MNIST", root=root, batch_size=7, protocol="paper", num_workers=0)
    x, y = all_batches(data.test_loader)
    assert x.shape == (N_TEST, 1, 28, 28) and x.dtype == torch.float32
    torch.testing.assert_close(x, normalise_grey(test, MNIST_STATS))
    assert y.tolist() == test_labels.tolist()
    # paper protocol: full training set, "validation" is the test set (as the original)
    assert len(data.train_loader.dataset) == N_TRAIN
    assert data.val_loader is data.test_loader
    assert data.meta == D.dataset_meta("MNIST") and data.state == {}


def test_fashion_mnist_uses_its_own_statistics(fashion_root):
    root, (_, _, test, _) = fashion_root
    data = D.build_data("FashionMNIST", root=root, batch_size=8, protocol="paper", num_workers=0)
    x, _ = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise_grey(test, FASHION_STATS))


def test_sequential_mnist_is_the_raster_scan(mnist_root):
    root, (_, _, test, _) = mnist_root
    images, _ = all_batches(D.build_data("MNIST", root=root, batch_size=8, protocol="paper").test_loader)
    seqs, _ = all_batches(D.build_data("sMNIST", root=root, batch_size=8, protocol="paper").test_loader)
    assert seqs.shape == (N_TEST, 1, 784)
    torch.testing.assert_close(seqs, images.reshape(N_TEST, 1, 784))
    # step h * 28 + w is pixel (h, w): row-major
    expected = normalise_grey(test, MNIST_STATS)
    torch.testing.assert_close(seqs[:, 0, 3 * 28 + 5], expected[:, 0, 3, 5])


@pytest.mark.parametrize("name, root_fixture", [("sMNIST", "mnist_root"), ("sFashionMNIST", "fashion_root")])
def test_permutation_same_for_all_splits(name, root_fixture, request):
    root, (train, _, test, _) = request.getfixturevalue(root_fixture)
    stats = MNIST_STATS if name == "sMNIST" else FASHION_STATS
    data = D.build_data(name, root=root, batch_size=16, permuted=True, seed=3, val_fraction=0.2)
    perm = data.state["permutation"]
    assert perm.dtype == torch.long and sorted(perm.tolist()) == list(range(784))
    assert not torch.equal(perm, torch.arange(784))
    raw_train = normalise_grey(train, stats).reshape(N_TRAIN, 1, 784)
    first_pixel_step = int(torch.nonzero(perm == 0))  # where pixel (0, 0), the sample id, went
    for loader in (data.train_loader, data.val_loader):
        x, _ = all_batches(loader)  # the train loader is shuffled: identify samples by their id
        ids = torch.round((x[:, 0, first_pixel_step] * stats[1] + stats[0]) * 255).long()
        assert sorted(ids.tolist()) == sorted(loader.dataset.indices.tolist())
        torch.testing.assert_close(x, raw_train[ids][:, :, perm])
    x, _ = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise_grey(test, stats).reshape(N_TEST, 1, 784)[:, :, perm])


def test_permutation_fixed_by_seed_not_global_rng(mnist_root):
    root, _ = mnist_root
    torch.manual_seed(123)
    first = D.build_data("sMNIST", root=root, batch_size=8, permuted=True, seed=0).state["permutation"]
    torch.manual_seed(456)
    np.random.seed(456)
    again = D.build_data("sMNIST", root=root, batch_size=8, permuted=True, seed=0).state["permutation"]
    other = D.build_data("sMNIST", root=root, batch_size=8, permuted=True, seed=1).state["permutation"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(first, D.build_data("sMNIST", root=None, batch_size=8, permuted=True, seed=0,
                                           synthetic=True).state["permutation"])


def test_restored_permutation_is_used(mnist_root):
    root, (_, _, test, _) = mnist_root
    reverse = torch.arange(783, -1, -1)
    data = D.build_data("sMNIST", root=root, batch_size=8, permuted=True, seed=0, state={"permutation": reverse})
    assert torch.equal(data.state["permutation"], reverse)
    x, _ = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise_grey(test, MNIST_STATS).reshape(N_TEST, 1, 784).flip(-1))


@pytest.mark.parametrize(
    "kwargs, state",
    [
        ({"permuted": True}, {}),  # missing key
        ({"permuted": True}, {"permutation": torch.zeros(784, dtype=torch.long)}),  # not a permutation
        ({"permuted": True}, {"permutation": torch.arange(100)}),  # wrong length
        ({}, {"permutation": torch.arange(784)}),  # checkpoint of another configuration
    ],
)
def test_bad_restored_state_is_rejected(kwargs, state):
    with pytest.raises(ValueError, match="permutation"):
        D.build_data("sMNIST", root=None, batch_size=8, synthetic=True, state=state, **kwargs)


def test_clean_split_is_stratified_disjoint_and_seeded(mnist_root):
    root, _ = mnist_root
    data = D.build_data("MNIST", root=root, batch_size=8, protocol="clean", val_fraction=0.2, seed=5)
    train_x, train_y = all_batches(data.train_loader)
    val_x, val_y = all_batches(data.val_loader)
    test_x, _ = all_batches(data.test_loader)
    train_ids, val_ids, test_ids = ids_grey(train_x), ids_grey(val_x), ids_grey(test_x)
    assert len(val_ids) == round(0.2 * N_TRAIN)
    assert set(train_ids).isdisjoint(val_ids)
    assert set(train_ids) | set(val_ids) == set(range(N_TRAIN))
    assert set(test_ids) == set(range(TEST_ID0, TEST_ID0 + N_TEST))
    # stratified: every class keeps 1 or 2 of its 6 samples (20% = 1.2)
    assert set(torch.bincount(val_y, minlength=10).tolist()) <= {1, 2}
    assert all(label == i % 10 for i, label in zip(val_ids, val_y.tolist()))
    same = D.build_data("MNIST", root=root, batch_size=8, val_fraction=0.2, seed=5).val_loader.dataset.indices
    other = D.build_data("MNIST", root=root, batch_size=8, val_fraction=0.2, seed=6).val_loader.dataset.indices
    assert torch.equal(same, data.val_loader.dataset.indices)
    assert not torch.equal(other, same)


def test_stratified_split_exact_size_and_proportions():
    targets = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train, val = D.stratified_split(targets, 0.1, seed=0)
    assert len(val) == 10 and len(train) == 90
    assert torch.bincount(targets[val]).tolist() == [5, 3, 2]
    assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(100))


def test_validation_uses_eval_transforms(mnist_root):
    """With augmentation on, training samples are augmented but validation samples are not."""
    root, (train, _, _, _) = mnist_root
    data = D.build_data("MNIST", root=root, batch_size=64, augment="standard", val_fraction=0.2, seed=0)
    val_x, _ = all_batches(data.val_loader)
    ids = [int(i) for i in data.val_loader.dataset.indices]
    torch.testing.assert_close(val_x, normalise_grey(train[ids], MNIST_STATS))
    torch.manual_seed(0)
    train_x, _ = all_batches(data.train_loader)
    ids = [int(i) for i in data.train_loader.dataset.indices]
    assert train_x.shape == (len(ids), 1, 28, 28)
    plain = normalise_grey(train, MNIST_STATS)
    changed = [not torch.equal(a, plain[i]) for a, i in zip(train_x, ids)]
    assert sum(changed) > len(ids) // 4  # each of 4 ops applied with p=0.5


def test_resolution_resizes_images(mnist_root):
    root, _ = mnist_root
    bilinear = D.build_data("MNIST", root=root, batch_size=8, protocol="paper", resolution=14)
    nearest = D.build_data("MNIST", root=root, batch_size=8, protocol="paper", resolution=14, interpolation="nearest")
    xb, _ = next(iter(bilinear.test_loader))
    xn, _ = next(iter(nearest.test_loader))
    assert bilinear.meta.input_shape == (1, 14, 14) and xb.shape == (8, 1, 14, 14)
    assert not torch.allclose(xb, xn)


def test_missing_files_offline_give_one_clear_error(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("MNIST", root=tmp_path, batch_size=4)
    message = str(info.value)
    assert "'MNIST'" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "internet" in message and "train-images-idx3-ubyte.gz" in message
    # torchvision's exception chain is not shown
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, RuntimeError)


def test_missing_cifar_offline_gives_clear_error(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("sCIFAR10", root=tmp_path, batch_size=4)
    message = str(info.value)
    assert "'sCIFAR10'" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "cifar-10-python.tar.gz" in message and "internet" in message


def test_fashion_mnist_found_in_system_search_path(tmp_path, monkeypatch):
    """Files installed by a system package (RAW_FILE_SEARCH_PATHS) are used when the root has none."""
    system_dir, root = tmp_path / "usr-share", tmp_path / "root"
    arrays = idx_arrays(4)
    write_idx_files(system_dir, arrays)
    monkeypatch.setitem(D.RAW_FILE_SEARCH_PATHS, "FashionMNIST", (system_dir,))
    data = D.build_data("FashionMNIST", root=root, batch_size=8, protocol="paper")
    x, y = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise_grey(arrays[2], FASHION_STATS))
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    # and without the search path the same root would have been an error
    monkeypatch.setitem(D.RAW_FILE_SEARCH_PATHS, "FashionMNIST", ())
    with pytest.raises(D.DatasetNotAvailableError, match="FashionMNIST"):
        D.build_data("FashionMNIST", root=tmp_path / "empty", batch_size=8)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    assert DEBIAN_FASHION in D.RAW_FILE_SEARCH_PATHS["FashionMNIST"]
    data = D.build_data("sFashionMNIST", root=tmp_path, batch_size=500, protocol="paper", num_workers=0)
    assert len(data.train_loader.dataset) == 60000 and len(data.test_loader.dataset) == 10000
    x, y = next(iter(data.test_loader))
    assert x.shape == (500, 1, 784) and 0 <= int(y.min()) and int(y.max()) <= 9
    # its own statistics standardise the real data
    pixels = data.train_loader.dataset.base.data.float() / 255
    assert abs(pixels.mean().item() - FASHION_STATS[0]) < 1e-3 and abs(pixels.std().item() - FASHION_STATS[1]) < 1e-3


# ----------------------------------------------------------------------------------------------------
# CIFAR-10 from python pickles
# ----------------------------------------------------------------------------------------------------
def test_cifar10_loads_pickles_and_normalises(cifar_root):
    root, (train, _, test, test_labels) = cifar_root
    data = D.build_data("CIFAR10", root=root, batch_size=8, protocol="paper")
    x, y = all_batches(data.test_loader)
    torch.testing.assert_close(x, normalise_rgb(test))
    assert y.tolist() == test_labels.tolist() and len(data.train_loader.dataset) == 50


def test_scifar10_is_the_raster_scan_per_channel(cifar_root):
    root, (_, _, test, _) = cifar_root
    x, _ = all_batches(D.build_data("sCIFAR10", root=root, batch_size=8, protocol="paper").test_loader)
    assert x.shape == (N_TEST, 3, 1024)
    torch.testing.assert_close(x, normalise_rgb(test).reshape(N_TEST, 3, 1024))


def test_noise_padded_cifar10(cifar_root):
    root, (train, _, test, _) = cifar_root
    data = D.build_data("sCIFAR10", root=root, batch_size=8, noise_padded=True, seed=0)
    noise = data.state["noise"]
    assert noise.shape == (968, 96) and noise.dtype == torch.float32
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05
    images = {"train": normalise_rgb(train), "test": normalise_rgb(test)}
    for split, loader in (("train", data.train_loader), ("train", data.val_loader), ("test", data.test_loader)):
        x, _ = all_batches(loader)
        assert x.shape == (len(loader.dataset), 96, 1000)
        # sample ids from R pixel (0, 0) = step 0, feature 0 (the train loader is shuffled)
        ids = torch.round((x[:, 0, 0] * CIFAR_STD[0, 0, 0] + CIFAR_MEAN[0, 0, 0]) * 255).long()
        ids = ids - (TEST_ID0 if split == "test" else 0)
        assert sorted(ids.tolist()) == sorted(loader.dataset.indices.tolist())
        img = images[split][ids]  # [N, 3, 32, 32]
        # step t < 32: row t of R, G, B concatenated
        for t in (0, 17, 31):
            torch.testing.assert_close(x[:, :, t], img[:, :, t, :].reshape(-1, 96))
        # steps 32..999: the same fixed noise for every sample and split
        torch.testing.assert_close(x[:, :, 32:], noise.t().expand(len(x), 96, 968))
    again = D.build_data("sCIFAR10", root=root, batch_size=8, noise_padded=True, seed=0).state["noise"]
    other = D.build_data("sCIFAR10", root=root, batch_size=8, noise_padded=True, seed=1).state["noise"]
    assert torch.equal(noise, again) and not torch.equal(noise, other)
    restored = D.build_data("sCIFAR10", root=root, batch_size=8, noise_padded=True, seed=1, state={"noise": noise})
    x, _ = next(iter(restored.test_loader))
    torch.testing.assert_close(x[:, :, 32:], noise.t().expand(len(x), 96, 968))


def test_cifar_resnet_augmentation_is_seeded_in_workers(cifar_root):
    root, (train, _, _, _) = cifar_root

    def first_batch(seed):
        data = D.build_data("CIFAR10", root=root, batch_size=16, augment="resnet", seed=seed, num_workers=2)
        return next(iter(data.train_loader)), data

    (x1, y1), data = first_batch(0)
    (x2, y2), _ = first_batch(0)
    (x3, _), _ = first_batch(1)
    assert x1.shape == (16, 3, 32, 32)
    torch.testing.assert_close(x1, x2)
    assert torch.equal(y1, y2) and not torch.equal(x1, x3)
    # augmented: the images differ from the plain normalised ones (crop offsets / flips)
    x, _ = all_batches(data.train_loader)
    plain = normalise_rgb(train)[[int(i) for i in data.train_loader.dataset.indices]]
    assert x.shape == plain.shape and not torch.allclose(torch.sort(x.flatten()).values, torch.sort(plain.flatten()).values)


# ----------------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")
def test_loader_settings_and_seeded_shuffle(mnist_root):
    root, _ = mnist_root
    data = D.build_data(D.DataSpec("MNIST", root=root, batch_size=7, num_workers=0), pin_memory=True)
    loader = data.train_loader
    assert loader.pin_memory and not loader.drop_last and loader.worker_init_fn is D.seed_worker
    # One batch size for every loader (as the original): there is no separate evaluation batch size.
    assert data.val_loader.batch_size == 7 and data.test_loader.batch_size == 7
    with pytest.raises(TypeError, match="eval_batch_size"):
        D.build_data("MNIST", root=root, batch_size=7, eval_batch_size=5)
    with pytest.raises(TypeError, match="batch_size"):  # a spec's options live in the spec
        D.build_data(D.DataSpec("MNIST", root=root), batch_size=7)
    assert not isinstance(loader.sampler, torch.utils.data.DistributedSampler)
    assert sum(len(y) for _, y in loader) == len(loader.dataset) == 54  # no drop_last

    def order(seed):
        x, _ = all_batches(D.build_data("MNIST", root=root, batch_size=7, seed=seed, num_workers=0).train_loader)
        return ids_grey(x)

    assert order(0) == order(0) != order(1)
    assert D.build_data("MNIST", root=root, batch_size=7).train_loader.num_workers == D.default_num_workers()


def test_seed_worker_seeds_numpy_and_random():
    torch.manual_seed(77)
    D.seed_worker(0)
    a = (np.random.rand(), random.random())
    torch.manual_seed(77)
    D.seed_worker(0)
    assert (np.random.rand(), random.random()) == a


def test_distributed_sampler(tmp_path):
    with pytest.raises(RuntimeError, match="distributed"):
        D.build_data("MNIST1D", root=None, batch_size=8, synthetic=True, distributed=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        data = D.build_data("MNIST1D", root=None, batch_size=8, synthetic=True, distributed=True)
    finally:
        dist.destroy_process_group()
    assert isinstance(data.train_loader.sampler, torch.utils.data.DistributedSampler)
    # Evaluation is sharded too (one rank here: all of it, in order).
    assert list(data.val_loader.sampler) == list(range(D.SYNTHETIC_SIZES[1]))
    assert list(data.test_loader.sampler) == list(range(D.SYNTHETIC_SIZES[2]))


def test_eval_shards_are_disjoint_unpadded_and_cover_the_set():
    from datasets.builder import EvalShard

    shards = [list(EvalShard(33, rank, 2)) for rank in range(2)]
    assert shards == [list(range(0, 33, 2)), list(range(1, 33, 2))]
    assert [len(EvalShard(33, rank, 2)) for rank in range(2)] == [17, 16]
    assert [list(EvalShard(2, rank, 3)) for rank in range(3)] == [[0], [1], []]  # more ranks than samples
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        EvalShard(10, 2, 2)


@pytest.mark.parametrize("name", sorted(ALL_KEYS))
@pytest.mark.parametrize("protocol", ["clean", "paper"])
def test_synthetic_data_has_the_dataset_shapes(name, protocol, tmp_path):
    options = {"sMNIST": {"permuted": True}, "sCIFAR10": {"noise_padded": True}}.get(name, {})
    root = tmp_path / "never-created"

    def build(seed):
        return D.build_data(name, root=root, batch_size=16, synthetic=True, seed=seed, protocol=protocol, **options)

    data = build(0)
    assert data.meta == D.dataset_meta(name, **options)
    for loader in (data.train_loader, data.val_loader, data.test_loader):
        x, y = next(iter(loader))
        assert x.shape == (16, *data.meta.input_shape) and x.dtype == torch.float32
        if data.meta.task == D.REGRESSION:  # the adding problem: one real target per sample
            assert y.shape == (16,) and y.dtype == torch.float32
            continue
        per_step = data.meta.task == D.PER_STEP_CLASSIFICATION  # copy memory: a class per time step
        assert y.shape == ((16, data.meta.length) if per_step else (16,))
        assert y.dtype == torch.long and 0 <= int(y.min()) and int(y.max()) < data.meta.num_classes
    assert (data.val_loader is data.test_loader) == (protocol == "paper")
    torch.testing.assert_close(next(iter(build(0).test_loader))[0], next(iter(data.test_loader))[0])
    assert not torch.allclose(next(iter(build(1).test_loader))[0], next(iter(data.test_loader))[0])
    assert not root.exists()


# ----------------------------------------------------------------------------------------------------
# MNIST-1D
# ----------------------------------------------------------------------------------------------------
def test_mnist1d_shapes_and_protocols(mnist1d_root):
    paper = D.build_data("MNIST1D", root=mnist1d_root, batch_size=128, protocol="paper")
    assert len(paper.train_loader.dataset) == 4000 and len(paper.test_loader.dataset) == 1000
    assert paper.train_loader.num_workers == 0  # in memory: workers would only add overhead
    x, y = next(iter(paper.train_loader))
    assert x.shape == (128, 1, 40) and x.dtype == torch.float32 and y.dtype == torch.long
    assert set(torch.unique(paper.test_loader.dataset.targets).tolist()) == set(range(10))
    clean = D.build_data("MNIST1D", root=mnist1d_root, batch_size=128)
    assert len(clean.train_loader.dataset) == 3600 and len(clean.val_loader.dataset) == 400
    # no extra normalisation: the package standardises the data itself
    all_x = torch.cat([paper.train_loader.dataset.base.inputs, paper.test_loader.dataset.base.inputs])
    assert abs(all_x.mean().item()) < 0.01 and abs(all_x.std().item() - 1) < 0.01


def test_mnist1d_generation_is_deterministic_and_cached(mnist1d_root, monkeypatch):
    assert (mnist1d_root / "mnist1d" / "mnist1d_data.npz").is_file()
    np.random.seed(99)
    random.seed(99)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(99)
    random.seed(99)
    fresh = mnist_1d.generate_mnist1d()
    # the package reseeds the global RNGs; generation must leave them as they were
    assert (np.random.rand(), random.random()) == (expected_np, expected_py)
    # loading now must come from the cache, not a new generation
    monkeypatch.setattr(mnist_1d, "generate_mnist1d", lambda: pytest.fail("regenerated despite the cache"))
    cached = mnist_1d.load_mnist1d(mnist1d_root)
    for key in ("x", "y", "x_test", "y_test"):
        np.testing.assert_array_equal(fresh[key], cached[key])
    assert fresh["x"].shape == (4000, 40) and fresh["x_test"].shape == (1000, 40)
