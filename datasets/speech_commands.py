"""Speech Commands v0.02 as the CKConv line uses it: one-second clips of ten spoken words, raw 16 kHz waveforms
``[1, 16000]`` or 20 MFCCs per 6.25 ms frame ``[20, 161]`` (``dataset_params.mfcc=true``; datasets/audio.py says
exactly how they are computed), 10 classes.

Words and labels: yes, no, up, down, left, right, on, off, stop, go -> 0..9 (the other 25 words of the archive
and its background noise are not used). Files where torchaudio's loader keeps them, so an existing download is
found (``dataset_params.root``, default ``data/``)::

    <root>/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav     16-bit PCM mono, 16 kHz
    <root>/SpeechCommands/speech_commands_v0.02/validation_list.txt                 <word>/<file>.wav per line
    <root>/SpeechCommands/speech_commands_v0.02/testing_list.txt

When the folder is missing, the official archive (:data:`URL`, 2.3 GB) is downloaded to
``<root>/SpeechCommands/speech_commands_v0.02.tar.gz`` (or taken from there if it already is) and the ten words
and the two lists are extracted from it; a member that is not a plain file or folder, or whose path is absolute
or leads outside the folder, stops the extraction (:func:`safe_extract`).

The first run decodes every clip of the ten words once into ``<root>/SpeechCommands/cache/clips.pt`` (int16,
zero-padded to 16000 samples, with each clip's length and path) and, with ``mfcc=true``, computes the MFCCs of all
of them once into ``cache/mfcc.pt``; later runs read these files (memory-mapped) and start in seconds. Both are
rebuilt when the clips on disk change.

Splits (``datasets/sequences.py`` for normalisation, dropped steps and sampling rates):

* ``protocol=paper`` - the CKConv line's: the clips of exactly one second (34975 of the 38546; shorter clips
  are left out, as the original did), pooled and split 70 / 15 / 15 stratified by word (24482 / 5246 / 5247);
* ``protocol=clean`` - the dataset's own split: the clips listed in ``validation_list.txt`` and
  ``testing_list.txt`` are the validation and test parts, the rest of the ten words the training part; every
  clip is used, shorter ones zero-padded at the end to one second (``dataset_params.val_fraction`` is not used).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import wave
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

import torch
from tqdm import tqdm

from .audio import AudioFormatError, mfcc, read_wav
from .paths import DatasetNotAvailableError, atomic_write
from .registry import DataOptions, register_dataset
from .sequences import SequenceDatasetSpec, SequenceParts
from .splits import pooled_split

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
CLIP_SAMPLES = 16000                    # one second at 16 kHz
MFCC_FRAMES = 1 + CLIP_SAMPLES // 100   # 161 frames of hop 100
AUDIO_SCALE = 1.0 / 2**15               # int16 -> [-1, 1)
VERSION = "speech_commands_v0.02"
URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
CACHE_FORMAT = 1                         # bump when what the cache holds changes


def dataset_folder(root: Path) -> Path:
    """``<root>/SpeechCommands/speech_commands_v0.02``: where the word folders and the lists are."""
    return Path(root) / "SpeechCommands" / VERSION


def archive_path(root: Path) -> Path:
    return Path(root) / "SpeechCommands" / f"{VERSION}.tar.gz"


# Progress bars (tqdm, disable=None) are drawn only on a terminal; a log gets the one line printed before them.


# --- download and safe extraction ---------------------------------------------------------------------------
def fetch(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination`` (written to ``<destination>.part`` first, renamed when complete)."""
    partial = destination.with_name(destination.name + ".part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        print(f"downloading {url} ({total / 1e9:.1f} GB) to {destination}" if total else f"downloading {url}")
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {destination.name}", disable=None) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    os.replace(partial, destination)


class UnsafeArchiveError(RuntimeError):
    """An archive member that is a link, a device, or a path that would land outside the target folder."""


def member_path(name: str) -> PurePosixPath:
    """The relative path of an archive member (``./yes/a.wav`` -> ``yes/a.wav``); an absolute path or one with a
    ``..`` part is an :class:`UnsafeArchiveError`."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or PureWindowsPath(name).drive:
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path or leaves the target folder")
    parts = [part for part in path.parts if part != "."]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def safe_extract(archive: Path, target: Path, wanted: Callable[[PurePosixPath], bool] = lambda path: True) -> int:
    """Extract the members of a tar archive for which ``wanted(relative path)`` holds into ``target``.

    Only plain files and folders are written, each by this function (never by ``tarfile``'s own extraction): a
    member that is a symbolic or hard link, a device or a FIFO, or whose path is absolute, contains ``..`` or
    resolves outside ``target``, raises :class:`UnsafeArchiveError` before anything of it is written - whether
    it is wanted or not. Files go to a temporary folder beside ``target`` that replaces it only when everything
    was extracted, so an interrupted extraction leaves no half folder behind. Returns the number of files.
    """
    target = Path(target)
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    root = staging.resolve()
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            print(f"extracting {archive} into {target}")
            for member in tqdm(tar, desc=f"extracting {Path(archive).name}", unit=" files", disable=None):
                relative = member_path(member.name)
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"archive member {member.name!r} is not a plain file or folder "
                                             "(a link or a device); not extracting it")
                destination = (staging / relative).resolve()
                if destination != root and root not in destination.parents:
                    raise UnsafeArchiveError(f"archive member {member.name!r} would be written outside {target}")
                if member.isdir() or not wanted(relative):
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                count += 1
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


def is_used_member(path: PurePosixPath) -> bool:
    """The members of the archive this dataset uses: the two list files and the clips of the ten words."""
    return str(path) in LISTS.values() or (len(path.parts) == 2 and path.parts[0] in WORDS
                                           and path.suffix == ".wav")


def ensure_files(root: Path) -> Path:
    """The dataset folder, downloading and extracting the archive first when it has none of the word folders."""
    folder = dataset_folder(root)
    if all((folder / word).is_dir() for word in WORDS):
        return folder
    archive = archive_path(root)
    how = (f"Download {URL} and extract it into '{folder}' (so that '{folder / 'yes'}' holds .wav files and "
           f"'{folder / LISTS['val']}' exists), or put the archive itself at '{archive}', or set "
           f"dataset_params.root to a data root that has SpeechCommands/{VERSION}/.")
    if not archive.is_file():
        try:
            archive.parent.mkdir(parents=True, exist_ok=True)
            fetch(URL, archive)
        except OSError as error:  # urllib's URLError is an OSError
            raise DatasetNotAvailableError(f"Dataset 'SpeechCommands' is not available: the word folders are not "
                                           f"in '{folder}' and downloading failed ({type(error).__name__}: "
                                           f"{error}). {how}") from None
    try:
        safe_extract(archive, folder, is_used_member)
    except (tarfile.TarError, EOFError) as error:
        raise DatasetNotAvailableError(f"Dataset 'SpeechCommands': '{archive}' is not a readable tar archive "
                                       f"({error}); delete it and run again, or: {how}") from None
    missing = [word for word in WORDS if not (folder / word).is_dir()]
    if missing:
        raise DatasetNotAvailableError(f"Dataset 'SpeechCommands': '{archive}' has no folders {', '.join(missing)}. "
                                       f"{how}")
    return folder


# --- decoding once into a cache ---------------------------------------------------------------------------
def clip_files(folder: Path) -> list[tuple[str, int]]:
    """``(word/file.wav, size in bytes)`` of every clip of the ten words, sorted (the order is fixed by the names,
    not by the file system)."""
    files = []
    for word in WORDS:
        for entry in os.scandir(folder / word):
            if entry.name.endswith(".wav") and entry.is_file():
                files.append((f"{word}/{entry.name}", entry.stat().st_size))
    return sorted(files, key=lambda item: (WORDS.index(item[0].split("/")[0]), item[0]))


def fingerprint(files: list[tuple[str, int]]) -> str:
    digest = hashlib.sha256(f"format {CACHE_FORMAT}\n".encode())
    for name, size in files:
        digest.update(f"{name} {size}\n".encode())
    return digest.hexdigest()


def _read_cache(path: Path, stamp: str):
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    return cached if isinstance(cached, dict) and cached.get("fingerprint") == stamp else None


def load_clips(folder: Path, cache_dir: Path) -> dict:
    """Every clip of the ten words: ``audio`` int16 ``[N, 16000]`` (zero-padded), ``lengths`` ``[N]``, ``labels``
    ``[N]`` (word index), ``files`` (``word/file.wav``); decoded once, then read from ``cache_dir/clips.pt``."""
    files = clip_files(folder)
    if not files:
        raise DatasetNotAvailableError(f"Dataset 'SpeechCommands': no .wav files in the word folders of '{folder}'")
    stamp = fingerprint(files)
    path = cache_dir / "clips.pt"
    cached = _read_cache(path, stamp)
    if cached is not None:
        return cached
    audio = torch.zeros(len(files), CLIP_SAMPLES, dtype=torch.int16)
    lengths = torch.zeros(len(files), dtype=torch.long)
    print(f"decoding the {len(files)} clips of the ten words once into {path}")
    for i, (name, _) in enumerate(tqdm(files, desc="decoding Speech Commands", unit=" clips", disable=None)):
        try:
            samples = read_wav(folder / name)
        except (AudioFormatError, wave.Error, EOFError, OSError) as error:  # wave.Error: not a WAV file
            raise DatasetNotAvailableError(f"Dataset 'SpeechCommands': cannot read {folder / name}: {error}") from None
        samples = samples[:CLIP_SAMPLES]
        audio[i, :len(samples)] = samples
        lengths[i] = len(samples)
    labels = torch.tensor([WORDS.index(name.split("/")[0]) for name, _ in files], dtype=torch.long)
    clips = {"fingerprint": stamp, "files": [name for name, _ in files], "audio": audio, "lengths": lengths,
             "labels": labels}
    with atomic_write(path) as handle:
        torch.save(clips, handle)
    return clips


def load_mfcc(clips: dict, cache_dir: Path) -> torch.Tensor:
    """MFCCs ``[N, 20, 161]`` of every clip (datasets/audio.py), computed once, then read from ``cache_dir/mfcc.pt``."""
    path = cache_dir / "mfcc.pt"
    cached = _read_cache(path, clips["fingerprint"])
    if cached is not None:
        return cached["mfcc"]
    audio = clips["audio"]
    chunk = 512
    features = []
    print(f"computing the MFCCs of {len(audio)} clips once into {path}")
    for start in tqdm(range(0, len(audio), chunk), desc="MFCCs of Speech Commands", unit=" batches", disable=None):
        features.append(mfcc(audio[start:start + chunk].float() * AUDIO_SCALE))
    features = torch.cat(features)
    with atomic_write(path) as handle:
        torch.save({"fingerprint": clips["fingerprint"], "mfcc": features}, handle)
    return features


def read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise DatasetNotAvailableError(f"Dataset 'SpeechCommands': {path} is missing; protocol=clean uses the "
                                       f"dataset's own split from {LISTS['val']} and {LISTS['test']} (they come "
                                       f"with the archive {URL}); protocol=paper does not need them")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def list_parts(files: list[str], folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) indices of the dataset's own split: the clips of the two lists, and the rest."""
    listed = {part: read_list(folder / name) for part, name in LISTS.items()}
    where = torch.tensor([1 if name in listed["val"] else 2 if name in listed["test"] else 0 for name in files])
    return tuple(torch.nonzero(where == part).flatten() for part in range(3))


@register_dataset("SpeechCommands")
class SpeechCommands(SequenceDatasetSpec):
    """Speech Commands, ten words: ``[1, 16000]`` raw or ``[20, 161]`` MFCC (one more channel with dropped steps)."""

    num_classes = len(WORDS)
    sequence_options = ("mfcc", "drop_rate", "sr_train", "sr_test")

    def channels(self, options: DataOptions) -> int:
        return 20 if options.mfcc else 1

    def full_length(self, options: DataOptions) -> int:
        return MFCC_FRAMES if options.mfcc else CLIP_SAMPLES

    def load_parts(self, root: Path, options: DataOptions, *, protocol: str, val_fraction: float,
                   seed: int) -> SequenceParts:
        folder = ensure_files(root)
        cache_dir = Path(root) / "SpeechCommands" / "cache"
        clips = load_clips(folder, cache_dir)
        inputs, scale = clips["audio"][:, None, :], AUDIO_SCALE  # [N, 1, 16000] int16
        if options.mfcc:
            inputs, scale = load_mfcc(clips, cache_dir), 1.0
        labels = clips["labels"]
        if protocol == "paper":
            full = torch.nonzero(clips["lengths"] == CLIP_SAMPLES).flatten()  # the original left shorter clips out
            train, val, test = pooled_split(labels[full])
            return SequenceParts(inputs, labels, full[train], full[val], full[test], scale)
        train, val, test = list_parts(clips["files"], folder)
        return SequenceParts(inputs, labels, train, val, test, scale)
