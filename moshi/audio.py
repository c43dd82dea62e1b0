"""Audio and time constants, named once.

Mimi works on 24 kHz mono audio, cut into 80 ms frames. Everything else (the LM's step
rate, the server's tick, the CLI's padding) is derived from these three numbers. Below
them: reading any audio file as 24 kHz mono, and writing wav.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def exact_div(a: float, b: float) -> int:
    """`a / b` as an int, asserting that it divides exactly (so a typo cannot round)."""
    q, r = divmod(a, b)
    if r != 0:
        raise ValueError(f"{a} is not a multiple of {b}")
    return int(q)


SAMPLE_RATE = 24_000  # Hz, mono
FRAME_RATE = 12.5  # codec frames (and LM steps) per second
FRAME_SIZE = exact_div(SAMPLE_RATE, FRAME_RATE)  # 1920 samples = 80 ms
FRAME_MS = exact_div(1000, FRAME_RATE)  # 80


# -- audio files ---------------------------------------------------------------------------------
# Reading takes any format libsndfile reads (wav, flac, ogg/vorbis, opus, mp3, aiff, ...), any
# sample rate and channel count, and gives what Mimi eats: 24 kHz mono float32. Resampling
# uses libsoxr (python-soxr, "HQ": a linear-phase polyphase filter whose passband ripple and
# aliasing are far below what the codec can hear).


class AudioFileError(ValueError):
    """A file that cannot be used as audio input: missing, unreadable, not audio, or empty."""


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any audio file -> [T] float32 mono at `sample_rate` (channels averaged, resampled).

    Raises AudioFileError with a one-line message naming the file."""
    pcm, rate = _read_file(path)  # [T, C]
    mono = pcm.mean(axis=1, dtype=np.float32) if pcm.shape[1] > 1 else pcm[:, 0]
    return resample(mono, rate, sample_rate)


def read_audio_channels(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any audio file -> [C, T] float32 at `sample_rate`, each channel resampled on its own
    (stereo dialogue data: channel 0 is the left one). Raises AudioFileError like `read_audio`."""
    pcm, rate = _read_file(path)  # [T, C]
    return np.stack([resample(np.ascontiguousarray(channel), rate, sample_rate) for channel in pcm.T])


def _read_file(path: str | Path) -> tuple[np.ndarray, int]:
    """The file's samples [T, C] float32 (T, C >= 1) and its sample rate."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"no such file: {path}")
    if not path.is_file():
        raise AudioFileError(f"not a file: {path}")
    try:
        pcm, rate = sf.read(path, dtype="float32", always_2d=True)  # [T, C]
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioFileError(f"{path}: not an audio file this program can read ({_short(e)})") from e
    if pcm.shape[0] == 0 or pcm.shape[1] == 0:
        raise AudioFileError(f"{path}: the file holds no audio (0 samples)")
    return pcm, int(rate)


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """[T] float32 at `from_rate` -> [round(T * to_rate / from_rate)] float32 at `to_rate`
    (at least one sample for a non-empty input)."""
    if pcm.ndim != 1:
        raise ValueError(f"resample takes mono pcm [T], got shape {list(pcm.shape)}")
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    if from_rate == to_rate or pcm.size == 0:
        return pcm
    import soxr

    out = soxr.resample(pcm, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
    if out.size == 0:  # a lone sample downsampled to nothing: keep its value
        out = pcm[:1].copy()
    return out


# What `write_audio` writes for each file suffix: soundfile's (format, subtype).
OUTPUT_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def output_format(path: str | Path) -> tuple[str, str]:
    """soundfile's (format, subtype) for a file name's suffix, or a ValueError naming the
    suffixes that can be written."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"cannot write {path}: the file name must end in {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write [T] (mono) or [T, C] float pcm as 16-bit PCM wav (clipped to [-1, 1])."""
    _write(path, pcm, sample_rate, OUTPUT_FORMATS[".wav"])


def write_audio(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write [T] or [T, C] float pcm (clipped to [-1, 1]) in the format the suffix names."""
    _write(path, pcm, sample_rate, output_format(path))


def _write(path: str | Path, pcm: np.ndarray, sample_rate: int, fmt: tuple[str, str]) -> None:
    import soundfile as sf

    if pcm.ndim not in (1, 2):
        raise ValueError(f"pcm must be [T] or [T, C], got shape {list(pcm.shape)}")
    sf.write(Path(path), np.clip(pcm, -1.0, 1.0), sample_rate, format=fmt[0], subtype=fmt[1])


def _short(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
