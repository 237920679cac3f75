"""Character Trajectories (UEA multivariate archive): pen-tip velocities of 20 handwritten characters, inputs
``[3, 182]`` (x, y velocity and pen pressure), 20 classes.

Files, as the archive ships them (``dataset=CharTrajectories``, ``dataset_params.root``; default ``data/``)::

    <root>/CharacterTrajectories/CharacterTrajectories_TRAIN.ts     1422 samples
    <root>/CharacterTrajectories/CharacterTrajectories_TEST.ts      1436 samples

read with our own parser of the archive's ``.ts`` format (:func:`read_ts`). The series have different lengths
(60 to 182 steps); each is padded to the longest, 182, by repeating its last value (as the CKConv line did).
Labels are the positions of the archive's class names in the file's ``@classLabel`` header (``1``..``20`` ->
0..19). Splits, normalisation, dropped steps and sampling rates: ``datasets/sequences.py`` (``protocol=paper``:
the 70 / 15 / 15 split of the 2858 pooled samples; ``protocol=clean``: the archive's own training / test files,
with ``dataset_params.val_fraction`` of the training file held out for validation).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .paths import DatasetNotAvailableError
from .registry import DataOptions, register_dataset
from .sequences import SequenceDatasetSpec, SequenceParts, held_out_parts, pooled_parts

FOLDER = "CharacterTrajectories"
FILES = {"train": "CharacterTrajectories_TRAIN.ts", "test": "CharacterTrajectories_TEST.ts"}
LENGTH = 182    # the longest series of the archive; every sample is padded to it
CHANNELS = 3
ARCHIVE_HINT = ("the archive's CharacterTrajectories.zip (UEA & UCR time series classification archive, "
                "https://www.timeseriesclassification.com; also inside its Multivariate2018_ts.zip)")


class TsFormatError(ValueError):
    """A ``.ts`` file that this reader cannot read; the message names the file and the line."""


@dataclass(frozen=True)
class TsData:
    """What a ``.ts`` file holds: one list of per-dimension series (1D float tensors) per sample, the samples'
    class names, and the class names of the ``@classLabel`` header in their order."""

    series: list[list[torch.Tensor]]
    labels: list[str]
    class_names: list[str]
    problem: str = ""


def read_ts(path: Path) -> TsData:
    """Read a classification problem in the UEA ``.ts`` format.

    Header lines start with ``@`` (``@problemName``, ``@timeStamps false``, ``@univariate``, ``@dimensions``,
    ``@equalLength``, ``@seriesLength``, ``@classLabel true <names...>``), then ``@data``; ``#`` lines are
    comments. Each data line is one sample: its dimensions separated by ``:``, each a comma-separated series,
    the class name last. Series may have different lengths; missing values (``?``) and time stamps are not
    supported (Character Trajectories has neither).
    """
    path = Path(path)
    header: dict[str, str] = {}
    class_names: list[str] = []
    series: list[list[torch.Tensor]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise TsFormatError(f"{path}:{number}: expected a header line (@...) before @data, got {line[:40]!r}")
                tag, _, value = line[1:].partition(" ")
                tag = tag.lower()
                if tag == "data":
                    in_data = True
                    _check_header(path, header, class_names)
                    continue
                if tag == "classlabel":
                    words = value.split()
                    if not words or words[0].lower() != "true":
                        raise TsFormatError(f"{path}:{number}: @classLabel must be 'true' followed by the class "
                                            f"names (a classification problem), got {value!r}")
                    class_names = words[1:]
                header[tag] = value.strip()
                continue
            *dimensions, label = line.split(":")
            if label not in class_names:
                raise TsFormatError(f"{path}:{number}: class {label!r} is not one of the @classLabel names "
                                    f"{' '.join(class_names)}")
            try:
                sample = [torch.tensor([float(v) for v in dimension.split(",")], dtype=torch.float64)
                          for dimension in dimensions]
            except ValueError as error:
                raise TsFormatError(f"{path}:{number}: a value is not a number ({error}); missing values ('?') "
                                    "are not supported") from None
            expected = int(header.get("dimensions", len(dimensions)))
            if len(sample) != expected:
                raise TsFormatError(f"{path}:{number}: {len(sample)} dimensions, but @dimensions says {expected}")
            series.append(sample)
            labels.append(label)
    if not in_data:
        raise TsFormatError(f"{path}: no @data line")
    if not series:
        raise TsFormatError(f"{path}: no samples after @data")
    return TsData(series, labels, class_names, header.get("problemname", ""))


def _check_header(path: Path, header: dict, class_names: list) -> None:
    if header.get("timestamps", "false").lower() != "false":
        raise TsFormatError(f"{path}: @timeStamps true is not supported (series of (time, value) pairs)")
    if not class_names:
        raise TsFormatError(f"{path}: no @classLabel true <names> header line")


def pad_to(series: list[torch.Tensor], length: int) -> torch.Tensor:
    """``[C, length]``: every dimension padded by repeating its last value (the CKConv line's padding)."""
    out = torch.empty(len(series), length, dtype=torch.float32)
    for c, values in enumerate(series):
        n = values.numel()
        if n == 0 or n > length:
            raise ValueError(f"a series of {n} steps cannot be padded to {length}")
        out[c, :n] = values.float()
        out[c, n:] = float(values[-1])
    return out


def stacked(data: TsData, class_names: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[N, C, length]`` and labels ``[N]`` (positions in ``class_names``) of one file."""
    inputs = torch.stack([pad_to(sample, length) for sample in data.series])
    labels = torch.tensor([class_names.index(label) for label in data.labels], dtype=torch.long)
    return inputs, labels


def load_files(root: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """All samples (training file first, then the test file): inputs ``[N, 3, 182]``, labels ``[N]``, and the
    number of samples from the training file."""
    folder = root / FOLDER
    paths = {part: folder / name for part, name in FILES.items()}
    missing = [path for path in paths.values() if not path.is_file()]
    if missing:
        raise DatasetNotAvailableError(
            f"Dataset 'CharTrajectories' is not available: {', '.join(map(str, missing))} not found. Put "
            f"{' and '.join(FILES.values())} from {ARCHIVE_HINT} into '{folder}' (or set dataset_params.root to a "
            f"folder that has {FOLDER}/ with them).")
    train, test = read_ts(paths["train"]), read_ts(paths["test"])
    if train.class_names != test.class_names:
        raise TsFormatError(f"the class names of {paths['train']} and {paths['test']} differ")
    if len(train.class_names) != CharTrajectories.num_classes:
        raise TsFormatError(f"{paths['train']} has {len(train.class_names)} classes, Character Trajectories has "
                            f"{CharTrajectories.num_classes}")
    for data, path in ((train, paths["train"]), (test, paths["test"])):
        longest = max(values.numel() for sample in data.series for values in sample)
        if longest > LENGTH or any(len(sample) != CHANNELS for sample in data.series):
            raise TsFormatError(f"{path}: Character Trajectories has {CHANNELS} dimensions of at most {LENGTH} "
                                f"steps; this file has series of {longest} steps")
    train_x, train_y = stacked(train, train.class_names, LENGTH)
    test_x, test_y = stacked(test, train.class_names, LENGTH)
    return torch.cat([train_x, test_x]), torch.cat([train_y, test_y]), len(train_y)


@register_dataset("CharTrajectories")
class CharTrajectories(SequenceDatasetSpec):
    """Character Trajectories ``[3, 182]`` (``[4, 182]`` with dropped steps), 20 classes."""

    num_classes = 20

    def channels(self, options: DataOptions) -> int:
        return CHANNELS

    def full_length(self, options: DataOptions) -> int:
        return LENGTH

    def load_parts(self, root: Path, options: DataOptions, *, protocol: str, val_fraction: float,
                   seed: int) -> SequenceParts:
        inputs, labels, n_train = load_files(root)
        if protocol == "paper":
            return pooled_parts(inputs, labels)
        train, test = torch.arange(n_train), torch.arange(n_train, len(labels))
        return held_out_parts(inputs, labels, train, test, val_fraction, seed)
