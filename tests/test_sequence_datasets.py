"""Speech Commands and Character Trajectories in their real on-disk layouts (a tree of WAV files with its two list
files, the archive's .ts files, the official .tar.gz), built small by the tests; MFCCs; dropped steps and sampling
rates; a model trained at one rate and tested at others; evaluation of a checkpoint at a list of test rates."""
from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import pytest
import torch

import datasets as D
from config import ConfigError, read_command
from datasets import audio, char_trajectories as ct, speech_commands as sc
from datasets.sequences import dropped_count
from engine.experiment import run
from engine.resample import at_sampling_step, resampled_grid

WORDS = sc.WORDS


# --- files in the real layouts ------------------------------------------------------------------------------------
def write_ts(path: Path, samples, labels, classes, header_extra=()) -> None:
    """A classification problem in the UEA .ts format, as the archive ships it."""
    lines = ["# written by the tests", "@problemName CharacterTrajectories", "@timeStamps false", "@missing false",
             "@univariate false", "@dimensions 3", "@equalLength false", "@seriesLength 182",
             "@classLabel true " + " ".join(classes), *header_extra, "@data"]
    for sample, label in zip(samples, labels):
        lines.append(":".join(",".join(f"{v:.6f}" for v in dim.tolist()) for dim in sample) + f":{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def trajectories(per_class: int, seed: int):
    """Samples of 3 dimensions and 60..182 steps whose shape depends on the class (learnable), and their labels."""
    generator = torch.Generator().manual_seed(seed)
    samples, labels = [], []
    for c in range(20):
        for _ in range(per_class):
            length = int(torch.randint(60, 183, (1,), generator=generator))
            t = torch.linspace(0, 1, length)
            samples.append([torch.sin(2 * math.pi * (1 + c % 5) * t + k + c // 5)
                            + 0.05 * torch.randn(length, generator=generator) for k in range(3)])
            labels.append(str(c + 1))
    return samples, labels


@pytest.fixture(scope="module")
def ct_root(tmp_path_factory) -> Path:
    """<root>/CharacterTrajectories/CharacterTrajectories_{TRAIN,TEST}.ts: 5 + 5 samples of each of 20 classes."""
    root = tmp_path_factory.mktemp("ct")
    classes = [str(i) for i in range(1, 21)]
    for part, seed in (("TRAIN", 0), ("TEST", 1)):
        samples, labels = trajectories(5, seed)
        write_ts(root / "CharacterTrajectories" / f"CharacterTrajectories_{part}.ts", samples, labels, classes)
    return root


def tone(word: int, length: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    return (8000 * torch.sin(2 * math.pi * (300 + 150 * word) * t)
            + 300 * torch.randn(length, generator=generator)).to(torch.int16)


def speech_tree(folder: Path, per_word: int = 6) -> list[str]:
    """<folder>/<word>/<speaker>_nohash_0.wav (16 kHz, one second; every third clip shorter, as some real ones are)
    and validation_list.txt / testing_list.txt naming a quarter of the clips each."""
    names = []
    for w, word in enumerate(WORDS):
        (folder / word).mkdir(parents=True, exist_ok=True)
        for k in range(per_word):
            name = f"{word}/{k:08x}_nohash_0.wav"
            audio.write_wav(folder / name, tone(w, 16000 if k % 3 else 11000, seed=100 * w + k))
            names.append(name)
    (folder / "validation_list.txt").write_text("\n".join(n for i, n in enumerate(names) if i % 4 == 1) + "\n")
    (folder / "testing_list.txt").write_text("\n".join(n for i, n in enumerate(names) if i % 4 == 2) + "\n")
    return names


@pytest.fixture(scope="module")
def sc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sc")
    speech_tree(sc.dataset_folder(root))
    return root


# --- Character Trajectories ---------------------------------------------------------------------------------------
def test_ts_reader_reads_the_archive_format(tmp_path):
    path = tmp_path / "x.ts"
    samples = [[torch.tensor([1.0, 2.0, 3.0])] * 3, [torch.tensor([4.0, 5.0])] * 3]
    write_ts(path, samples, ["b", "a"], ["a", "b"])
    data = ct.read_ts(path)
    assert data.class_names == ["a", "b"] and data.labels == ["b", "a"] and data.problem == "CharacterTrajectories"
    assert [len(s[0]) for s in data.series] == [3, 2]
    padded = ct.pad_to(data.series[1], 5)  # the CKConv line's padding: the last value repeated
    assert padded.tolist() == [[4.0, 5.0, 5.0, 5.0, 5.0]] * 3


@pytest.mark.parametrize("change, message", [
    (lambda text: text.replace("@data\n", ""), r"expected a header line \(@...\) before @data"),
    (lambda text: text.replace(":b\n", ":z\n", 1), "class 'z' is not one of"),
    (lambda text: text.replace("1.000000", "?", 1), "missing values"),
    (lambda text: text.replace("@timeStamps false", "@timeStamps true"), "@timeStamps true is not supported"),
])
def test_ts_reader_names_the_file_and_line_of_a_problem(tmp_path, change, message):
    path = tmp_path / "x.ts"
    write_ts(path, [[torch.tensor([1.0, 2.0])] * 3], ["b"], ["a", "b"])
    path.write_text(change(path.read_text()))
    with pytest.raises(ct.TsFormatError, match=message) as info:
        ct.read_ts(path)
    assert str(path) in str(info.value)


def test_char_trajectories_splits_padding_and_normalisation(ct_root):
    paper = D.build_data("CharTrajectories", root=ct_root, protocol="paper", batch_size=500, seed=3)
    assert paper.meta.input_shape == (3, 182) and paper.meta.num_classes == 20
    sizes = [len(loader.dataset) for loader in (paper.train_loader, paper.val_loader, paper.test_loader)]
    assert sizes == [140, 30, 30]  # 70 / 15 / 15 of the 200 pooled samples
    parts = [set(loader.dataset.indices.tolist()) for loader in (paper.train_loader, paper.val_loader,
                                                                  paper.test_loader)]
    assert set.union(*parts) == set(range(200)) and sum(map(len, parts)) == 200
    # Stratified: each class has 10 pooled samples, so 1 or 2 of them in each of validation and test.
    for loader in (paper.val_loader, paper.test_loader):
        assert set(torch.bincount(loader.dataset.targets, minlength=20).tolist()) <= {1, 2}
    # The pooled split is the same for every seed (the original fixed it), so every seed tests on the same samples.
    other = D.build_data("CharTrajectories", root=ct_root, protocol="paper", batch_size=500, seed=4)
    assert torch.equal(other.test_loader.dataset.indices, paper.test_loader.dataset.indices)
    # Normalised per channel with the training part's statistics.
    x, _ = next(iter(paper.train_loader))
    torch.testing.assert_close(x.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2)), torch.ones(3), atol=1e-3, rtol=0)
    # protocol=clean: the archive's test file is the test part, a tenth of its training file validates.
    clean = D.build_data("CharTrajectories", root=ct_root, protocol="clean", batch_size=500, seed=3)
    assert [len(l.dataset) for l in (clean.train_loader, clean.val_loader, clean.test_loader)] == [90, 10, 100]
    assert clean.test_loader.dataset.indices.tolist() == list(range(100, 200))


def test_dropped_steps_get_a_mask_channel_fixed_by_the_seed(ct_root):
    def first_test_batch(seed):
        data = D.build_data("CharTrajectories", root=ct_root, protocol="paper", batch_size=30, seed=seed,
                            drop_rate=30.0)
        return next(iter(data.test_loader))[0], data.meta

    x, meta = first_test_batch(0)
    assert meta.input_shape == (4, 182) and x.shape == (30, 4, 182)
    mask = x[:, 3]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert (mask == 0).sum(dim=1).tolist() == [dropped_count(182, 30.0)] * 30  # int(182 * 0.3) = 54 per sample
    assert bool((x[:, :3][(mask == 0)[:, None].expand(-1, 3, -1)] == 0).all())  # dropped steps read 0
    assert torch.equal(first_test_batch(0)[0], x)  # fixed by the seed ...
    assert not torch.equal(first_test_batch(1)[0][:, 3], mask)  # ... and another seed drops other steps


def test_sampling_rates_read_every_kth_sample(ct_root):
    full = D.build_data("CharTrajectories", root=ct_root, protocol="paper", batch_size=30, drop_rate=50.0)
    fast = D.build_data("CharTrajectories", root=ct_root, protocol="paper", batch_size=30, drop_rate=50.0,
                        sr_train=2, sr_test=4)
    assert fast.meta.input_shape == (4, 91)
    assert next(iter(fast.train_loader))[0].shape[-1] == 91 and next(iter(fast.val_loader))[0].shape[-1] == 91
    x_full, x_test = next(iter(full.test_loader))[0], next(iter(fast.test_loader))[0]
    assert x_test.shape == (30, 4, 46)
    torch.testing.assert_close(x_test, x_full[:, :, ::4])  # the same samples, dropped steps and all


def test_missing_char_trajectories_files_name_what_to_put_where(tmp_path):
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("CharTrajectories", root=tmp_path, batch_size=4)
    message = str(info.value)
    folder = tmp_path / "CharacterTrajectories"
    assert str(folder) in message and "CharacterTrajectories_TRAIN.ts" in message
    assert "CharacterTrajectories_TEST.ts" in message and "timeseriesclassification.com" in message


# --- Speech Commands ---------------------------------------------------------------------------------------------
def test_speech_commands_splits_and_cache(sc_root, monkeypatch):
    paper = D.build_data("SpeechCommands", root=sc_root, protocol="paper", batch_size=8)
    # The pooled split uses the one-second clips only (4 of 6 per word), as the original did.
    sizes = [len(loader.dataset) for loader in (paper.train_loader, paper.val_loader, paper.test_loader)]
    assert sizes == [28, 6, 6]
    used = torch.cat([loader.dataset.indices for loader in (paper.train_loader, paper.val_loader,
                                                           paper.test_loader)])
    clips = torch.load(sc_root / "SpeechCommands" / "cache" / "clips.pt", weights_only=True)
    assert bool((clips["lengths"][used] == 16000).all()) and clips["audio"].shape == (60, 16000)
    assert clips["labels"].tolist() == [w for w in range(10) for _ in range(6)]  # word order: yes, no, up, ...
    x, y = next(iter(paper.test_loader))
    assert x.shape == (6, 1, 16000) and paper.meta.num_classes == 10

    # Later runs read the cache: no WAV file is decoded again.
    monkeypatch.setattr(sc, "read_wav", lambda path: pytest.fail(f"decoded {path} again"))
    clean = D.build_data("SpeechCommands", root=sc_root, protocol="clean", batch_size=8)
    files = clips["files"]
    val_names = set((sc.dataset_folder(sc_root) / "validation_list.txt").read_text().split())
    assert {files[i] for i in clean.val_loader.dataset.indices.tolist()} == val_names  # the dataset's own split
    assert [len(l.dataset) for l in (clean.train_loader, clean.val_loader, clean.test_loader)] == [30, 15, 15]
    short = next(i for i in clean.train_loader.dataset.indices.tolist() if clips["lengths"][i] < 16000)
    padded = clean.train_loader.dataset.base[short][0]
    assert padded.shape == (1, 16000) and padded[0, 11000:].unique().numel() == 1  # zero-padded to one second


def test_speech_commands_mfcc_features(sc_root):
    data = D.build_data("SpeechCommands", root=sc_root, protocol="paper", batch_size=8, mfcc=True, drop_rate=50.0)
    assert data.meta.input_shape == (21, 161)
    x, _ = next(iter(data.train_loader))
    assert x.shape == (8, 21, 161) and (x[:, 20] == 0).sum(dim=1).tolist() == [80] * 8
    assert (sc_root / "SpeechCommands" / "cache" / "mfcc.pt").is_file()


def test_mfcc_is_the_documented_computation():
    # DCT-II, orthonormal: an orthogonal matrix when all coefficients are kept, the cosine basis of the definition.
    full = audio.dct_matrix(64, 64)
    torch.testing.assert_close(full.t() @ full, torch.eye(64), atol=1e-5, rtol=0)
    n, k = torch.arange(64.0), 3
    torch.testing.assert_close(full[:, k], math.sqrt(2 / 64) * torch.cos(math.pi / 64 * (n + 0.5) * k))
    # Mel filters: triangles with peak 1 at centres evenly spaced on the HTK mel scale from 0 to 8000 Hz.
    bank = audio.mel_filterbank()
    assert bank.shape == (101, 64) and float(bank.max()) <= 1.0 + 1e-6 and bool((bank >= 0).all())
    # A 1 kHz tone: the strongest band is the one whose centre frequency is nearest 1 kHz.
    centres = 700 * (10 ** (torch.linspace(0, 2595 * math.log10(1 + 8000 / 700), 66)[1:-1] / 2595) - 1)
    t = torch.arange(16000) / 16000
    features = audio.mfcc(torch.sin(2 * math.pi * 1000 * t)[None])
    assert features.shape == (1, 20, 161)
    power = torch.stft(torch.sin(2 * math.pi * 1000 * t), 200, 100, window=torch.hann_window(200),
                       return_complex=True).abs().pow(2)        # [101 bins, 161 frames], centred frames
    log_mel = torch.log(power.t() @ bank + 1e-6)
    assert int(log_mel.mean(0).argmax()) == int((centres - 1000).abs().argmin())
    torch.testing.assert_close(features[0].t(), log_mel @ audio.dct_matrix(), atol=1e-4, rtol=1e-4)


def tar_of(members: dict[str, bytes], links: dict[str, tuple[bytes, str]] = {}) -> bytes:
    """A .tar.gz with the given files and (name -> (type, target)) link members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return buffer.getvalue()


def test_speech_commands_downloads_and_extracts_the_archive(tmp_path, monkeypatch):
    source = tmp_path / "source"
    speech_tree(source, per_word=4)
    members = {f"./{path.relative_to(source).as_posix()}": path.read_bytes() for path in sorted(source.rglob("*"))
               if path.is_file()}
    members["./bird/0000_nohash_0.wav"] = members["./yes/00000001_nohash_0.wav"]  # one of the 25 unused words
    members["./_background_noise_/white_noise.wav"] = b"RIFF"
    archive = tar_of(members)
    fetched = []

    def fetch(url, destination):  # only the network is replaced
        fetched.append(url)
        destination.write_bytes(archive)

    monkeypatch.setattr(sc, "fetch", fetch)
    root = tmp_path / "data"
    data = D.build_data("SpeechCommands", root=root, protocol="clean", batch_size=4)
    assert fetched == [sc.URL]
    folder = sc.dataset_folder(root)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*WORDS, "testing_list.txt", "validation_list.txt"])
    assert len(list(folder.rglob("*.wav"))) == 40 and not folder.with_name(folder.name + ".partial").exists()
    assert len(data.train_loader.dataset) + len(data.val_loader.dataset) + len(data.test_loader.dataset) == 40


@pytest.mark.parametrize("members, links", [
    ({"./yes/a.wav": b"x", "../evil.wav": b"x"}, {}),
    ({"/tmp/evil.wav": b"x"}, {}),
    ({"./yes/a.wav": b"x"}, {"./yes/link.wav": (tarfile.SYMTYPE, "/etc/passwd")}),
    ({"./yes/a.wav": b"x"}, {"./yes/hard.wav": (tarfile.LNKTYPE, "../../outside")}),
    ({"./yes/a.wav": b"x"}, {"./no/dev": (tarfile.CHRTYPE, "")}),
])
def test_extraction_refuses_members_that_escape_or_are_not_plain_files(tmp_path, members, links):
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(tar_of(members, links))
    target = tmp_path / "out" / "speech_commands_v0.02"
    with pytest.raises(sc.UnsafeArchiveError):
        sc.safe_extract(archive, target)
    assert list((tmp_path / "out").iterdir()) == []  # no target, no half-extracted folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.tar.gz", "out"]


def test_offline_without_files_one_message_naming_what_to_put_where(tmp_path, monkeypatch):
    def offline(url, destination):
        raise OSError("offline (test)")

    monkeypatch.setattr(sc, "fetch", offline)
    with pytest.raises(D.DatasetNotAvailableError) as info:
        D.build_data("SpeechCommands", root=tmp_path, batch_size=4)
    message = str(info.value)
    assert sc.URL in message and str(sc.dataset_folder(tmp_path)) in message and "validation_list.txt" in message
    assert str(sc.archive_path(tmp_path)) in message and "\n" not in message


# --- kernels resampled for another rate ---------------------------------------------------------------------------
def test_a_continuous_kernel_at_half_the_rate_approximates_the_full_rate_response():
    from ckconv import CKConv

    torch.manual_seed(0)
    layer = CKConv(1, 1, data_dim=1, horizon="same", kernel_type="SIREN", kernel_omega_0=3.0, use_fft=False)
    t = torch.linspace(0, 1, 401)
    x = torch.sin(2 * math.pi * 2 * t)[None, None]
    with torch.no_grad():
        full = layer(x)                                          # grid of 401 taps
        state = {k: v.clone() if torch.is_tensor(v) else dict(v) for k, v in layer.state_dict().items()}
        with at_sampling_step(layer, 1, 2, (1, 401)) as grids:
            half = layer(x[:, :, ::2])                           # 201 steps, kernel resampled on 201 taps
        assert grids == {"": 201} and layer.grid_size == 401     # back on the training grid afterwards
        assert all(torch.equal(v, layer.state_dict()[k]) for k, v in state.items() if torch.is_tensor(v))
        assert layer.get_extra_state() == state["_extra_state"]
        unscaled = CKConv(1, 1, data_dim=1, horizon="same", kernel_type="SIREN", kernel_omega_0=3.0, use_fft=False)
        unscaled.load_state_dict(state)
        unscaled.set_horizon(201, rescale=False)                 # the same grid without the sampling-rate norm
        wrong = unscaled(x[:, :, ::2])
    target = full[..., ::2]
    error = (half - target).abs().mean() / target.abs().mean()
    assert error < 0.02, error                                   # the same continuous convolution
    assert (wrong - target).abs().mean() / target.abs().mean() > 0.3  # (without the rescaling: about half of it)
    assert resampled_grid(182, 1, 4) == 46 and resampled_grid(91, 2, 1) == 181


# --- training, checkpoint evaluation, other rates -----------------------------------------------------------------
TINY_SEQUENCE = ["net.no_hidden=8", "net.no_blocks=1", "kernel.no_hidden=8", "net.dropout=0.0", "wandb.mode=disabled",
                 "device=cpu", "dataset_params.num_workers=0", "train.plot_every=-1", "train.scheduler_params.warmup_epochs=0"]


def test_char_trajectories_trains_evaluates_and_tests_at_other_rates(ct_root, tmp_path):
    base = ["dataset=CharTrajectories", f"dataset_params.root={ct_root}", *TINY_SEQUENCE, "train.batch_size=16"]
    trained = run(read_command([*base, "protocol=paper", "train.epochs=1", "dataset_params.drop_rate=30"]),
                  tmp_path / "train")
    assert trained["status"] == "completed" and trained["best_test_accuracy"] is None  # a real validation part
    best = tmp_path / "train" / "checkpoints" / "best.pt"
    # The evaluation commands name only the checkpoint and where the data is: the rest is the checkpoint's.
    evaluate = [f"dataset_params.root={ct_root}", "wandb.mode=disabled", "device=cpu", "train.plot_every=-1",
                "train.do=False", "pretrained=True", f"pretrained_params.filepath={best}"]
    again = run(read_command(evaluate), tmp_path / "eval")
    assert again["test_accuracy"] == trained["test_accuracy"]  # the checkpoint's config: split, drops, rate

    rates = run(read_command([*evaluate, "test.sampling_rates=[1,2,4]"]), tmp_path / "rates")
    assert rates["accuracy_by_sampling_rate"]["1"] == trained["test_accuracy"]
    assert [(r["sampling_rate"], r["steps"], r["kernel_grid"]) for r in rates["evaluations"]] == [
        (1, 182, 182), (2, 91, 91), (4, 46, 46)]
    csv = (tmp_path / "rates" / "accuracy_by_sampling_rate.csv").read_text().splitlines()
    assert csv[0] == "sampling_rate,steps,accuracy,loss" and csv[2].startswith("2,91,")
    assert (tmp_path / "rates" / "accuracy_vs_sampling_rate.png").stat().st_size > 1000
    # One test rate on the command line (sr_test) is the same evaluation as its row of the table.
    at_two = run(read_command([*evaluate, "dataset_params.sr_test=2"]), tmp_path / "at2")
    assert at_two["test_accuracy"] == rates["accuracy_by_sampling_rate"]["2"]


def test_a_run_trained_at_one_rate_tests_at_another(ct_root, tmp_path):
    overrides = ["dataset=CharTrajectories", f"dataset_params.root={ct_root}", *TINY_SEQUENCE, "train.batch_size=32",
                 "train.epochs=2", "dataset_params.sr_train=2", "dataset_params.sr_test=1"]
    summary = run(read_command(overrides), tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # The kernels are on the training grid (91 taps) in every epoch's record, though the test ran at 182 steps.
    from engine.checkpoint import load_checkpoint
    model_state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    grids = {k: v["grid_size"] for k, v in model_state.items() if k.endswith("_extra_state")}
    assert grids and set(grids.values()) == {91}
    assert all(max(size) <= 91 for line in lines for size in line["kernel_sizes"].values())
    assert summary["test_accuracy"] is not None


def test_speech_commands_raw_and_mfcc_train_and_evaluate(sc_root, tmp_path):
    base = ["dataset=SpeechCommands", f"dataset_params.root={sc_root}", *TINY_SEQUENCE, "train.batch_size=16",
            "train.epochs=1", "protocol=paper"]
    raw = run(read_command([*base, "dataset_params.sr_train=2"]), tmp_path / "raw")
    mfcc = run(read_command([*base, "dataset_params.mfcc=true"]), tmp_path / "mfcc")
    assert raw["status"] == mfcc["status"] == "completed"
    best = tmp_path / "raw" / "checkpoints" / "best.pt"
    rates = run(read_command([*base, "train.do=False", "pretrained=True", f"pretrained_params.filepath={best}",
                              "test.sampling_rates=[1,2]"]), tmp_path / "rates")
    assert rates["trained_sampling_rate"] == 2 and rates["accuracy_by_sampling_rate"]["2"] == raw["test_accuracy"]
    assert [r["steps"] for r in rates["evaluations"]] == [16000, 8000]


def test_sequence_options_are_checked_where_they_are_read(tmp_path):
    def message(*overrides):
        with pytest.raises(ConfigError) as info:
            read_command(["wandb.mode=disabled", *overrides])
        return str(info.value)

    assert "dataset_params.mfcc=True is not supported by dataset 'MNIST1D'" in message("dataset_params.mfcc=true")
    assert "SpeechCommands" in message("dataset=CIFAR10", "dataset_params.drop_rate=30")
    assert "0 <= drop_rate < 100" in message("dataset=CharTrajectories", "dataset_params.drop_rate=100")
    assert "dataset_params.sr_train=0" in message("dataset=CharTrajectories", "dataset_params.sr_train=0")
    rates = message("dataset=CharTrajectories", "test.sampling_rates=[1,2]")
    assert "train.do=False" in rates and "pretrained_params.filepath" in rates
    assert "ints >= 1" in message("test.sampling_rates=[0]", "train.do=False", "pretrained=True",
                                  "pretrained_params.filepath=x.pt")


CKCONV_PRESETS = sorted(path.stem for path in (Path(__file__).parents[1] / "cfg" / "experiment").glob("ck_*.yaml"))


@pytest.mark.parametrize("preset", CKCONV_PRESETS)
def test_ckconv_line_presets_build_the_recorded_model(preset):
    """Every CKConv-line preset builds the network its paper.no_params records, at the data's shape (input channels:
    one more with dropped steps, 20 for MFCCs)."""
    from engine.build import build_run_model, input_meta
    from models import count_parameters

    spec = read_command([f"experiment={preset}"]).spec
    assert spec.data.protocol == "paper" and spec.config["paper"]["table"] == "ck"
    assert count_parameters(build_run_model(spec, input_meta(spec))) == spec.config["paper"]["no_params"]
