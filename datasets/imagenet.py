"""Downsampled ImageNet: ``Imagenet8``, ``Imagenet16``, ``Imagenet32``, ``Imagenet64`` and ``Imagenet-k``.

Keys (images [3, k, k], ImageNet mean/std, augment ``None`` | ``resnet`` = zero-pad k/8 + random crop k +
random horizontal flip)::

    Imagenet8 / 16 / 32 / 64   the 1000 ImageNet classes at 8, 16, 32, 64 px; resolution=r resizes to [3, r, r]
    Imagenet-k                 the classes found on disk (a subset is fine), at the size chosen by the resolution:
                               resolution=r (cross_res.resize=r, or a cross-resolution phase at r) reads the
                               stored set Imagenet{r} as it is (no resampling); r in 8, 16, 32, 64; default 32

So ``run_experiment.py dataset=Imagenet-k cross_res.resize=16`` trains on the stored 16 px set, and
``run_crossres.py dataset=Imagenet-k cross_res.source_res=16 cross_res.target_res=32`` trains on Imagenet16 and
fine-tunes on Imagenet32 (the original's behaviour), the number of classes read from the data. ``Imagenet-k``
reads the same files as ``Imagenet{r}``; the two differ in the classes: ``Imagenet{r}`` always has 1000 outputs
(a folder tree must hold the 1000 class folders; the official files' labels 1..1000 are ImageNet's own),
``Imagenet-k`` as many as the data has. :func:`dataset_at_resolution` is the one rule "the data of a run at
resolution r" (what a cross-resolution phase uses).

Two on-disk layouts, recognised by what is on disk (under the data root ``<root>``)::

    image folders:   <root>/Imagenet32/train/<class>/<image>   <root>/Imagenet32/val/<class>/<image>
    official files:  <root>/Imagenet32_train/train_data_batch_1 ... train_data_batch_10
                     <root>/Imagenet32_val/val_data

Image folders: any image file PIL reads, k x k RGB; classes are the folder names in sorted order (``val`` is
indexed with the training classes). Official files (the downsampled-ImageNet archives, extracted): pickled
dicts with ``data`` (uint8 rows of 3*k*k values, channel-major: red plane, green, blue) and ``labels``
(1-based). ``val`` is the test set. Where both layouts are present, the image folders are read.
``dataset_params.root`` may also name the set's own folder (``.../Imagenet32``, or any folder with train/ and val/ for the Imagenet{k} keys); for Imagenet-k a path
component ``Imagenet-k`` stands for ``Imagenet{r}``, as in the original's commands
(``dataset_params.root=/data/Imagenet-k/raw-data`` reads ``/data/Imagenet16/raw-data/{train,val}`` at 16 px).

Storage (``dataset_params``):

* default: image folders are decoded from their files at every access (every epoch); the official files are
  unpickled into one uint8 tensor [N, 3, k, k] in memory (they hold no other form).
* ``in_ram=True``: image folders are decoded once, in parallel (``num_workers``), into one uint8 tensor
  [N, 3, k, k]; later epochs only index it.
* ``from_cache=True``: that tensor is written once to ``<root>/cache/Imagenet{k}/{train,val}.pt`` (atomically)
  and memory-mapped afterwards: later runs start at once, and every run and worker shares the OS page
  cache instead of holding copies. With ``in_ram=True`` as well, the cache is read into memory instead.
  A cache whose source files changed (count, sizes or times) is rebuilt.

Under torchrun every rank loads its own copy unless ``from_cache`` memory-maps one file for all of them.

Memory: one uint8 copy of the images (the official files' arrays are copied into the one tensor, each dropped as
soon as it is copied: the peak is one copy plus one file). DataLoader workers are forked and share the tensor (or the memory map); a
memory-mapped set pickled into a worker (spawn) reopens its file instead of being copied. Items are
``(uint8 tensor [3, k, k], label)``; the transforms work on uint8 tensors (no PIL round trip).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .paths import DatasetNotAvailableError, atomic_write
from .registry import DataOptions, DatasetMeta, DatasetSpec, register_dataset
from .transforms import INTERPOLATION_MODES

SIZES = (8, 16, 32, 64)         # the stored downsampled sets
DEFAULT_K_SIZE = 32             # Imagenet-k without a resolution
IMAGENET_CLASSES = 1000
IMAGENET_K = "Imagenet-k"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PARTITIONS = ("train", "val")   # val is the test set
TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
VAL_FILE = "val_data"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
CACHE_FORMAT = "flexconv-imagenet-cache-v1"


def set_name(size: int) -> str:
    """The stored set of ``size`` px: ``Imagenet{size}``."""
    return f"Imagenet{size}"


def dataset_at_resolution(name: str, resolution: int) -> tuple[str, Optional[int]]:
    """``(dataset key, resolution option)`` of the data of dataset ``name`` at ``resolution`` px.

    The one rule of "the dataset of a phase at resolution r": for ``Imagenet-k`` the key stays and the
    resolution picks the stored set ``Imagenet{r}`` (no resampling; ``r`` must be one of :data:`SIZES`, else
    ``ValueError``); for every other dataset the images are resized to ``r`` (``None`` at the native size).
    ``DataSpec.at_resolution(r)`` applies it to a spec.
    """
    from .registry import get_dataset_spec

    spec = get_dataset_spec(name)
    if isinstance(spec, ImagenetK):
        if resolution not in SIZES:
            raise ValueError(f"{IMAGENET_K} has no stored set at {resolution} px; stored sizes: "
                             f"{', '.join(map(str, SIZES))}")
        return name, (None if resolution == DEFAULT_K_SIZE else resolution)
    native = spec.meta(spec.check_options(augment=None, permuted=False, noise_padded=False, resolution=None,
                                          interpolation="bilinear")).length
    return name, (None if resolution == native else resolution)


# --- where the files are ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImagenetFiles:
    """One stored set on disk: ``layout`` "folder" (``folder`` holds train/ and val/) or "pickle" (``files`` maps
    each partition to its pickled batch files); ``root`` is the data root the cache goes under."""

    name: str
    size: int
    layout: str
    root: Path
    folder: Optional[Path] = None
    files: Optional[Mapping[str, tuple[Path, ...]]] = None

    def cache_path(self, partition: str) -> Path:
        return self.root / "cache" / self.name / f"{partition}.pt"


def _candidate_roots(root: Path, name: str) -> list[Path]:
    """Data roots to look in: ``root``, and first its parent when ``root`` is named after the set."""
    return [root.parent, root] if root.name == name else [root]


def locate(root: Path, size: int, dataset: str) -> ImagenetFiles:
    """The stored ``Imagenet{size}`` set under ``root`` (either layout), or a DatasetNotAvailableError naming the
    files of both layouts and where they go.

    ``root`` is a data root holding the set, or the set's own folder with train/ and val/ (the original's
    ``dataset_params.root``; for ``Imagenet-k`` a path component ``Imagenet-k`` stands for ``Imagenet{size}``, as
    the original swapped it per phase: ``.../Imagenet-k/raw-data`` -> ``.../Imagenet16/raw-data``)."""
    name = set_name(size)
    root = Path(root)
    note = ""
    if dataset == IMAGENET_K and IMAGENET_K in root.parts:
        root = Path(*[name if part == IMAGENET_K else part for part in root.parts])
        note = f" ({IMAGENET_K} in dataset_params.root stands for {name})"
    if (dataset == name or note) and (root / "train").is_dir() and (root / "val").is_dir():
        # the root is the set's folder; the cache goes beside it when it is called Imagenet{k}
        return ImagenetFiles(name, size, "folder", root.parent if root.name == name else root, folder=root)
    tried = []
    for base in _candidate_roots(root, name):
        folder = base / name
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return ImagenetFiles(name, size, "folder", base, folder=folder)
        train = tuple(base / f"{name}_train" / f for f in TRAIN_FILES)
        val = (base / f"{name}_val" / VAL_FILE,)
        present = [p for p in train + val if p.is_file()]
        if len(present) == len(train) + len(val):
            return ImagenetFiles(name, size, "pickle", base, files={"train": train, "val": val})
        if present:  # an incomplete copy of the official files: say which are missing
            missing = [str(p) for p in train + val if not p.is_file()]
            raise DatasetNotAvailableError(
                f"Dataset {dataset!r}: the official downsampled-ImageNet files of {name} under '{base}' are "
                f"incomplete; missing: {', '.join(missing)}")
        tried.append(base)
    base = tried[0]
    raise DatasetNotAvailableError(
        f"Dataset {dataset!r} is not available: no {name} in {', '.join(repr(str(p)) for p in tried)}{note} (it is "
        f"never downloaded). Provide one of two layouts: the official downsampled-ImageNet files ({name}_train.zip "
        f"and {name}_val.zip, from image-net.org) extracted as '{base / (name + '_train')}/train_data_batch_1' ... "
        f"'train_data_batch_10' and '{base / (name + '_val') / VAL_FILE}'; or image folders "
        f"'{base / name}/train/<class>/<image>' and '{base / name}/val/<class>/<image>' ({size}x{size} RGB images, "
        f"one folder per class). Or set dataset_params.root to the data root that has them.")


# --- raw datasets ---------------------------------------------------------------------------------------------
class UInt8Images(Dataset):
    """``(uint8 tensor [3, k, k], label)`` items of one uint8 tensor ``images`` [N, 3, k, k] (in memory or
    memory-mapped from ``cache_path``). Pickling a memory-mapped set (spawned workers) sends the path, not the
    images: the worker maps the file itself."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: Sequence[str],
                 cache_path: Optional[Path] = None):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.classes = list(classes)
        self.cache_path = cache_path

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.images[index], int(self.targets[index])

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.cache_path is not None:
            state["images"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.images is None:
            self.images = torch.load(self.cache_path, mmap=True, weights_only=True)["images"]


class ImageFiles(Dataset):
    """``(uint8 tensor [3, k, k], label)`` decoded from the image files of a folder tree at every access.

    Paths are one numpy bytes array (no per-item Python objects, so forked workers share them untouched)."""

    def __init__(self, folder: Path, paths: np.ndarray, targets: torch.Tensor, classes: Sequence[str], size: int):
        self.folder, self.paths, self.size = folder, paths, size
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.targets)

    def path(self, index: int) -> Path:
        return self.folder / os.fsdecode(self.paths[index])

    def __getitem__(self, index: int):
        return decode_image(self.path(index), self.size), int(self.targets[index])


def decode_image(path: Path, size: int) -> torch.Tensor:
    """One image file -> uint8 [3, size, size]; another size is an error naming the file."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.array(image if image.mode == "RGB" else image.convert("RGB"))  # a writable copy
    if array.shape[:2] != (size, size):
        raise ValueError(f"{path} is {array.shape[1]}x{array.shape[0]} px, but {set_name(size)} images are "
                         f"{size}x{size}")
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


# --- reading the layouts ----------------------------------------------------------------------------------------
def folder_classes(folder: Path) -> list[str]:
    """Class folder names of ``folder/train``, sorted."""
    return sorted(entry.name for entry in os.scandir(folder / "train") if entry.is_dir())


def _scan_folder(folder: Path, partition: str, classes: Sequence[str]) -> tuple[np.ndarray, torch.Tensor]:
    """(relative image paths as a bytes array, labels) of ``folder/partition``, classes indexed as ``classes``."""
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for entry in sorted(os.scandir(folder / partition), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        if entry.name not in index:
            raise DatasetNotAvailableError(f"{folder / partition / entry.name}: class folder {entry.name!r} is not "
                                           f"among the {len(classes)} training classes of {folder / 'train'}")
        files = sorted(f.name for f in os.scandir(entry.path) if f.name.lower().endswith(IMAGE_SUFFIXES))
        paths += [os.fsencode(f"{entry.name}/{f}") for f in files]
        labels += [index[entry.name]] * len(files)
    if not paths:
        raise DatasetNotAvailableError(f"{folder / partition} holds no images (expected <class>/<image> files)")
    return np.array(paths), torch.tensor(labels, dtype=torch.long)


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        return entry
    except Exception as error:
        raise DatasetNotAvailableError(f"{path} is not an official downsampled-ImageNet batch file "
                                       f"({type(error).__name__}: {error})") from None


def _pickle_rows(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [n, 3, k, k] view of the rows, 1-based labels) of one official file."""
    entry = _read_pickle(path)
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise DatasetNotAvailableError(f"{path}: expected a pickled dict with 'data' and 'labels'")
    data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * size * size or len(data) != len(labels):
        raise DatasetNotAvailableError(
            f"{path}: 'data' must be uint8 rows of 3*{size}*{size}={3 * size * size} values with one label each, got "
            f"{data.dtype} {tuple(data.shape)} and {len(labels)} labels (is it a {set_name(size)} file?)")
    return data.reshape(-1, 3, size, size), labels  # channel-major rows: a view, no copy


@functools.lru_cache(maxsize=8)
def _pickle_label_set(path: str, stamp: tuple) -> tuple[int, ...]:
    """Distinct 1-based labels of one official file (memoised per file version)."""
    return tuple(np.unique(_pickle_rows(Path(path), int(stamp[2]))[1]).tolist())


def _stamp(paths: Sequence[Path], size: int) -> tuple:
    stats = [p.stat() for p in paths]
    return (sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats), size)


def pickle_classes(files: ImagenetFiles) -> list[int]:
    """The 1-based labels the data has (read from the validation file)."""
    (val,) = files.files["val"]
    return list(_pickle_label_set(str(val), _stamp([val], files.size)))


def _load_pickles(paths: Sequence[Path], size: int, label_map: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The official files as one uint8 tensor [N, 3, k, k] and 0-based labels. The files' arrays are one copy;
    the tensor is filled from them while each is dropped, so memory peaks at one copy plus one file."""
    chunks, labels = [], []
    for path in paths:  # one copy of every file; the tensor is filled below while they are dropped
        rows, raw = _pickle_rows(path, size)
        chunks.append(rows)
        labels.append(raw)
    raw = np.concatenate(labels)
    bad = (raw < 1) | (raw >= len(label_map)) if len(raw) else np.zeros(0, bool)
    mapped = np.full(raw.shape, -1, np.int64)
    mapped[~bad] = label_map[raw[~bad]]
    if bad.any() or (mapped < 0).any():
        value = int(raw[bad | (mapped < 0)][0])
        raise DatasetNotAvailableError(f"{', '.join(map(str, paths))}: label {value} is not one of the "
                                       f"{int((label_map >= 0).sum())} classes of this set (1-based labels; "
                                       f"Imagenet-k takes its classes from the validation file)")
    images = torch.empty((len(raw), 3, size, size), dtype=torch.uint8)  # pages are committed as they are filled
    start = 0
    for i in range(len(chunks)):
        rows, chunks[i] = chunks[i], None
        images[start:start + len(rows)] = torch.from_numpy(rows)
        start += len(rows)
        del rows
    return images, torch.from_numpy(mapped)


class _Decode(Dataset):
    def __init__(self, files: ImageFiles):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return self.files[index][0]


def decode_all(files: ImageFiles, num_workers: int = 0, batch_size: int = 512) -> torch.Tensor:
    """Every image of ``files`` decoded once into one uint8 tensor [N, 3, k, k] (``num_workers`` processes)."""
    images = torch.empty((len(files), 3, files.size, files.size), dtype=torch.uint8)
    loader = DataLoader(_Decode(files), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    start = 0
    for batch in loader:
        images[start:start + len(batch)] = batch
        start += len(batch)
    return images


# --- the cache --------------------------------------------------------------------------------------------------
def _source_stamp(files: ImagenetFiles, partition: str, paths: Optional[np.ndarray] = None) -> dict:
    if files.layout == "pickle":
        stat = [p.stat() for p in files.files[partition]]
        return {"files": [str(p) for p in files.files[partition]], "sizes": [s.st_size for s in stat],
                "mtimes": [s.st_mtime_ns for s in stat]}
    return {"folder": str(files.folder / partition), "images": int(len(paths)),
            "mtime": (files.folder / partition).stat().st_mtime_ns}


def read_cache(path: Path, stamp: dict, in_ram: bool) -> Optional[UInt8Images]:
    """The cached set when ``path`` is a cache of these source files, else None."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, mmap=not in_ram, weights_only=True)
    except Exception:  # unreadable (an older format, a foreign file): rebuilt
        return None
    if entry.get("format") != CACHE_FORMAT or json.loads(entry.get("source", "null")) != stamp:
        return None
    return UInt8Images(entry["images"], entry["labels"], json.loads(entry["classes"]),
                       cache_path=None if in_ram else path)


def write_cache(path: Path, data: UInt8Images, stamp: dict) -> None:
    entry = {"format": CACHE_FORMAT, "images": data.images, "labels": data.targets,
             "classes": json.dumps(data.classes), "source": json.dumps(stamp)}
    with atomic_write(path) as handle:
        torch.save(entry, handle)


# --- transforms (uint8 tensors) ---------------------------------------------------------------------------------
class UInt8ImagePipeline:
    """uint8 [3, k, k] -> normalised float [3, r, r]: optional ResNet augmentation (zero-pad ``k // 8``, random
    crop back to k, horizontal flip with p=0.5; padded pixels become -mean/std), then /255, a resize to
    ``out_size`` when the image has another size (antialiased), Normalize. Random draws come from torch's global
    RNG, which a DataLoader seeds per worker and epoch."""

    def __init__(self, out_size: int, augment: bool, interpolation: str = "bilinear"):
        self.out_size, self.augment, self.interpolation = out_size, augment, interpolation
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        k = image.shape[-1]
        if self.augment:
            pad = k // 8
            side = 2 * pad + 1
            draw = int(torch.randint(0, side * side * 2, ()))  # one draw: crop offsets and flip
            top, left, flip = draw % side, (draw // side) % side, draw >= side * side
            if pad:
                image = torch.nn.functional.pad(image, (pad, pad, pad, pad))[:, top:top + k, left:left + k]
            image = image.flip(-1) if flip else image
        x = image.float().div_(255)
        if k != self.out_size:
            from torchvision.transforms.v2 import functional as F

            x = F.resize(x, [self.out_size, self.out_size], interpolation=INTERPOLATION_MODES[self.interpolation],
                         antialias=True)
        return x.sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"UInt8ImagePipeline(out_size={self.out_size}, augment={self.augment}, interpolation={self.interpolation!r})"


# --- the dataset keys -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Storage:
    """How to hold the images (``dataset_params.in_ram`` / ``from_cache`` / ``num_workers``; module docstring)."""

    in_ram: bool = False
    from_cache: bool = False
    num_workers: int = 0


class _DownsampledImagenet(DatasetSpec):
    """Shared by the keys; ``size`` is the stored set's side."""

    size: ClassVar[int] = DEFAULT_K_SIZE
    num_classes = IMAGENET_CLASSES
    augment_choices = ("None", "resnet")
    supports_resolution = True
    classes_from_data: ClassVar[bool] = False   # Imagenet-k: the number of classes is read from the files

    def stored_size(self, options: DataOptions) -> int:
        return self.size

    def meta(self, options: DataOptions) -> DatasetMeta:
        side = options.resolution or self.size
        return DatasetMeta(self.name, 2, 3, self.num_classes, (3, side, side))

    def transforms(self, options: DataOptions, state):
        out_size = self.meta(options).length
        train = UInt8ImagePipeline(out_size, options.augment == "resnet", options.interpolation)
        evaluation = UInt8ImagePipeline(out_size, False, options.interpolation)
        return train, evaluation

    def synthetic_raw(self, num_samples: int, generator: torch.Generator) -> UInt8Images:
        k = self.size
        images = torch.randint(0, 256, (num_samples, 3, k, k), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, self.num_classes, (num_samples,), generator=generator)
        return UInt8Images(images, labels, [str(i) for i in range(self.num_classes)])

    # ----- files ------------------------------------------------------------------------------------------------
    def load_raw(self, root) -> tuple[Dataset, Dataset]:
        return self.load_stored(Path(root), self.size, Storage())

    def load_data(self, root: Path, options: DataOptions, *, in_ram: bool = False, from_cache: bool = False,
                  num_workers: int = 0) -> tuple[Dataset, Dataset]:
        """(train, test) raw sets held as ``in_ram`` / ``from_cache`` say (module docstring); ``num_workers``
        processes decode image folders."""
        storage = Storage(in_ram, from_cache, num_workers)
        return self.load_stored(Path(root), self.stored_size(options), storage)

    def classes(self, files: ImagenetFiles) -> tuple[list[str], np.ndarray | None]:
        """(class names, 1-based label -> class index for the official files)."""
        if files.layout == "folder":
            classes = folder_classes(files.folder)
            if not self.classes_from_data and len(classes) != IMAGENET_CLASSES:
                raise DatasetNotAvailableError(
                    f"Dataset {self.name!r}: {files.folder / 'train'} has {len(classes)} class folders, but "
                    f"{self.name} has the {IMAGENET_CLASSES} ImageNet classes; for a class subset use "
                    f"dataset={IMAGENET_K}")
            return classes, None
        if self.classes_from_data:
            labels = pickle_classes(files)
        else:
            labels = list(range(1, IMAGENET_CLASSES + 1))
        label_map = np.full(max(labels) + 1, -1, np.int64)
        label_map[labels] = np.arange(len(labels))
        return [str(label) for label in labels], label_map

    def load_stored(self, root: Path, size: int, storage: Storage) -> tuple[Dataset, Dataset]:
        files = locate(root, size, self.name)
        classes, label_map = self.classes(files)
        return tuple(self._partition(files, partition, classes, label_map, storage) for partition in PARTITIONS)

    def _partition(self, files: ImagenetFiles, partition: str, classes, label_map, storage: Storage) -> Dataset:
        paths = None
        if files.layout == "folder":
            paths, targets = _scan_folder(files.folder, partition, classes)
        if storage.from_cache:
            stamp = _source_stamp(files, partition, paths)
            cached = read_cache(files.cache_path(partition), stamp, storage.in_ram)
            if cached is not None:
                if cached.classes != list(classes):
                    cached = None
                else:
                    return cached
        if files.layout == "pickle":
            images, targets = _load_pickles(files.files[partition], files.size, label_map)
            data = UInt8Images(images, targets, classes)
        else:
            image_files = ImageFiles(files.folder / partition, paths, targets, classes, files.size)
            if not (storage.in_ram or storage.from_cache):
                return image_files
            data = UInt8Images(decode_all(image_files, storage.num_workers), targets, classes)
        if storage.from_cache:
            path = files.cache_path(partition)
            write_cache(path, data, stamp)
            if not storage.in_ram:  # use the memory map: the decoded copy is dropped
                del data
                return read_cache(path, stamp, in_ram=False)
        return data


@register_dataset("Imagenet8")
class Imagenet8(_DownsampledImagenet):
    """Downsampled ImageNet [3, 8, 8], 1000 classes."""

    size = 8


@register_dataset("Imagenet16")
class Imagenet16(_DownsampledImagenet):
    """Downsampled ImageNet [3, 16, 16], 1000 classes."""

    size = 16


@register_dataset("Imagenet32")
class Imagenet32(_DownsampledImagenet):
    """Downsampled ImageNet [3, 32, 32], 1000 classes."""

    size = 32


@register_dataset("Imagenet64")
class Imagenet64(_DownsampledImagenet):
    """Downsampled ImageNet [3, 64, 64], 1000 classes."""

    size = 64


@register_dataset(IMAGENET_K)
class ImagenetK(_DownsampledImagenet):
    """Downsampled ImageNet with the classes found on disk, at the stored size picked by the resolution
    (``resolution=r`` -> Imagenet{r}, read as it is; default 32). Without files (synthetic data, config checks)
    the metadata says 1000 classes; ``DataSpec.meta()`` and ``build_data`` read the real number."""

    classes_from_data = True

    def stored_size(self, options: DataOptions) -> int:
        return options.resolution or DEFAULT_K_SIZE

    def check_options(self, **kwargs) -> DataOptions:
        options = super().check_options(**kwargs)
        if options.resolution is not None and options.resolution not in SIZES:
            raise ValueError(f"resolution={options.resolution} is not a stored size of {IMAGENET_K} (it picks the "
                             f"stored set Imagenet{{r}}, read without resampling): allowed "
                             f"{', '.join(map(str, SIZES))}; to resample, use dataset=Imagenet32 with a resolution")
        return options

    def data_num_classes(self, root: Path, options: DataOptions) -> int:
        """How many classes the stored set at this resolution has (class folders, or the official files' labels)."""
        files = locate(Path(root), self.stored_size(options), self.name)
        if files.layout == "folder":
            return len(folder_classes(files.folder))
        return len(pickle_classes(files))
