"""Audio for Speech Commands: reading WAV files with the standard library, and MFCC features in torch.

MFCCs (:func:`mfcc`) are those the CKConv line computed with ``torchaudio.transforms.MFCC(log_mels=True,
n_mfcc=20, melkwargs=dict(n_fft=200, n_mels=64))`` at 16 kHz, written out here (torchaudio has no build for
this torch). For a clip ``x`` of 16000 samples scaled to [-1, 1):

1. power spectrogram: ``|STFT(x)|^2`` with ``n_fft = 200`` (12.5 ms), a periodic Hann window of 200 samples,
   hop 100 samples (6.25 ms), the clip reflect-padded by 100 samples at both ends (centred frames):
   101 frequency bins x 161 frames;
2. mel spectrogram: 64 triangular filters (no area normalisation) with centres evenly spaced on the HTK mel
   scale ``mel(f) = 2595 log10(1 + f / 700)`` between 0 Hz and 8000 Hz, applied to the power spectrogram;
3. ``log(mel + 1e-6)``;
4. DCT-II with orthonormal scaling over the 64 mel bands, first 20 coefficients.

Result: ``[20, 161]`` per clip (coefficients x frames).
"""
from __future__ import annotations

import math
import wave
from pathlib import Path

import torch

SAMPLE_RATE = 16000
N_FFT = 200
HOP = 100            # n_fft // 2
N_MELS = 64
N_MFCC = 20
LOG_OFFSET = 1e-6
F_MIN, F_MAX = 0.0, SAMPLE_RATE / 2


class AudioFormatError(ValueError):
    """A WAV file this reader cannot read (not 16-bit PCM mono at the expected rate)."""


def read_wav(path: Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The samples of a 16-bit PCM mono WAV file as int16 ``[n]`` (Speech Commands' format)."""
    with wave.open(str(path), "rb") as handle:
        channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
        if channels != 1 or width != 2 or rate != sample_rate:
            raise AudioFormatError(f"{path}: {channels} channel(s), {8 * width}-bit, {rate} Hz; expected 16-bit PCM "
                                   f"mono at {sample_rate} Hz")
        frames = handle.readframes(handle.getnframes())
    return torch.frombuffer(bytearray(frames), dtype=torch.int16).clone()  # WAV samples are little-endian


def write_wav(path: Path, samples: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 samples ``[n]`` as a 16-bit PCM mono WAV file (tests and tools)."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(samples.to(torch.int16).numpy().tobytes())


def _hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, float) else 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> torch.Tensor:
    """``[n_freqs, n_mels]`` triangular filters on the HTK mel scale, peak 1, no area normalisation."""
    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(_hz_to_mel(float(f_min)), _hz_to_mel(float(f_max)), n_mels + 2, dtype=torch.float64)
    edges = _mel_to_hz(mels)                                  # [n_mels + 2]
    widths = edges[1:] - edges[:-1]                           # [n_mels + 1]
    slopes = edges[None, :] - freqs[:, None]                  # [n_freqs, n_mels + 2]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def dct_matrix(n_mfcc: int = N_MFCC, n_mels: int = N_MELS) -> torch.Tensor:
    """``[n_mels, n_mfcc]``: the orthonormal DCT-II, first ``n_mfcc`` basis vectors as columns."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k)       # [n_mfcc, n_mels]
    basis[0] *= 1.0 / math.sqrt(2.0)
    basis *= math.sqrt(2.0 / n_mels)
    return basis.t().float()


def mfcc(waveforms: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """MFCCs ``[N, 20, frames]`` of waveforms ``[N, n]`` in [-1, 1) at 16 kHz (module docstring), computed in
    chunks of ``chunk`` clips."""
    window = torch.hann_window(N_FFT, periodic=True)
    filters, dct = mel_filterbank(), dct_matrix()
    out = []
    for start in range(0, waveforms.shape[0], chunk):
        x = waveforms[start:start + chunk].float()
        spectrum = torch.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True,
                              pad_mode="reflect", return_complex=True)
        power = spectrum.abs() ** 2                                           # [n, 101, frames]
        mel = torch.matmul(power.transpose(1, 2), filters)                   # [n, frames, 64]
        out.append(torch.matmul(torch.log(mel + LOG_OFFSET), dct).transpose(1, 2))  # [n, 20, frames]
    return torch.cat(out) if out else torch.empty(0, N_MFCC, 1 + waveforms.shape[-1] // HOP)
