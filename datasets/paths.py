"""Where dataset files live, where else we look for them, and the error raised when they are absent.

The data root defaults to ``data/`` at the project root (NOT the current working directory: Hydra
may run each job inside its own output directory, and datasets must not be downloaded once per
run). ``dataset_params.root`` overrides it; a relative override is taken relative to the project
root for the same reason.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = PROJECT_ROOT / "data"

# Directories searched (in this order, after the data root itself) for raw files that a system
# package may have installed, keyed by torchvision class name. Debian/Ubuntu's
# `dataset-fashion-mnist` installs the four Fashion-MNIST IDX .gz files into the directory below.
RAW_FILE_SEARCH_PATHS: dict[str, tuple[Path, ...]] = {
    "MNIST": (),
    "FashionMNIST": (Path("/usr/share/datasets/fashion-mnist"),),
}


class DatasetNotAvailableError(RuntimeError):
    """The files of a dataset are missing and could not be downloaded (e.g. no network)."""


def resolve_root(root: str | os.PathLike | None) -> Path:
    """Absolute data root: ``None`` -> DEFAULT_DATA_ROOT; relative paths are relative to the project root."""
    if root is None:
        return DEFAULT_DATA_ROOT
    path = Path(root).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


@contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write(path) as handle: ...`` writes a temporary file beside ``path`` (``.<name>.*.tmp``) and
    replaces ``path`` with it, synced to disk, only when the block succeeds; on any error the temporary file is
    removed. A reader (a concurrent run, W&B, a viewer) never sees half a file, and a process killed while
    writing leaves the previous file intact. The project's one way of writing a file that others read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` (:func:`atomic_write`), decompressing when ``src`` ends in .gz."""
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rb") as fin, atomic_write(dst) as fout:
        shutil.copyfileobj(fin, fout)


@contextmanager
def unavailable_as_error(dataset: str, searched: Sequence[Path], how: str) -> Iterator[None]:
    """Turn torchvision's download / "not found" failures into one DatasetNotAvailableError.

    torchvision raises RuntimeError ("Dataset not found", "Error downloading ...") or URLError /
    OSError from the network layer; its chained tracebacks are long and do not say where to put
    the files, so the chain is suppressed and replaced by a message that does.
    """
    try:
        yield
    except (RuntimeError, OSError) as err:  # urllib's URLError is an OSError
        # torchvision's messages span several lines ("Error downloading X:\nTried <url>, got: ...").
        cause = " ".join(str(err).split())
        cause = cause if len(cause) <= 400 else cause[:400] + " ..."
        where = ", ".join(f"'{p}'" for p in searched)
        raise DatasetNotAvailableError(
            f"Dataset {dataset!r} is not available: no usable files in {where} and downloading "
            f"failed ({type(err).__name__}: {cause}). {how}"
        ) from None
