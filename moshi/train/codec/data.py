"""Codec training audio: the files of a moshi-finetune manifest (`{"path": ..., "duration":
...}` per line, paths relative to the manifest), as mono at the codec's rate, served as
random crops: files at that rate are read a crop at a time from disk, others once into
memory. A file that cannot be read is skipped and named."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...audio import AudioFileError, read_audio
from ..alignments import read_manifest

log = logging.getLogger(__name__)


def manifest_paths(manifest: str | Path) -> list[Path]:
    """The audio paths of a .jsonl manifest (moshi-finetune's), resolved against its folder."""
    return [entry.path for entry in read_manifest(manifest)]


class MemoryClip:
    """A clip held in memory: [T] float32."""

    def __init__(self, pcm: np.ndarray):
        self.pcm = torch.from_numpy(np.ascontiguousarray(pcm, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.pcm)

    def crop(self, start: int, n: int) -> Tensor:
        """[n] samples from `start`, zero-padded past the end."""
        out = self.pcm[start : start + n]
        return torch.nn.functional.pad(out, (0, n - len(out)))


class FileClip:
    """A file already at the codec's rate, left on disk: each crop reads only its samples
    (channels averaged), so a corpus of any size trains in little memory."""

    def __init__(self, path: Path, frames: int):
        self.path, self.frames = path, frames

    def __len__(self) -> int:
        return self.frames

    def crop(self, start: int, n: int) -> Tensor:
        import soundfile as sf

        pcm, _ = sf.read(self.path, start=start, frames=n, dtype="float32", always_2d=True)  # [n', C]
        mono = torch.from_numpy(pcm.mean(axis=1, dtype=np.float32))
        return torch.nn.functional.pad(mono, (0, n - len(mono)))


class AudioCrops:
    """Random crops of `crop` samples from clips (arrays [T_i] float32, or `MemoryClip` /
    `FileClip`; a clip shorter than a crop is zero-padded), a clip drawn in proportion to its
    length (at least a crop)."""

    def __init__(self, clips: list[np.ndarray | MemoryClip | FileClip], crop: int):
        if not clips:
            raise ValueError("no audio to train on")
        self.clips = [MemoryClip(c) if isinstance(c, np.ndarray) else c for c in clips]
        self.crop = crop
        self.weights = torch.tensor([float(max(len(c), crop)) for c in self.clips])

    @classmethod
    def from_manifest(cls, manifest: str | Path, sample_rate: int, crop: int) -> AudioCrops:
        """The manifest's files: those at `sample_rate` stay on disk (`FileClip`), others are
        read and resampled into memory. Unreadable files are skipped and named."""
        clips: list[np.ndarray | MemoryClip | FileClip] = []
        skipped = 0
        for path in manifest_paths(manifest):
            try:
                clips.append(_clip(path, sample_rate))
            except AudioFileError as e:
                log.warning("skipped: %s", e)
                skipped += 1
        if skipped:
            log.warning("%d of %d files of %s skipped", skipped, skipped + len(clips), manifest)
        return cls(clips, crop)

    def batch(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """[batch_size, 1, crop] drawn with `generator` (its state is the data position)."""
        which = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        crops = []
        for i in which.tolist():
            clip = self.clips[i]
            start = int(torch.randint(max(len(clip), self.crop) - self.crop + 1, (1,), generator=generator))
            crops.append(clip.crop(start, self.crop))
        return torch.stack(crops)[:, None]


def _clip(path: Path, sample_rate: int) -> FileClip | np.ndarray:
    """A file at `sample_rate` with samples: on disk; otherwise read (and resampled) now.
    Raises AudioFileError naming the file."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        info = None  # read_audio names what is wrong
    if info is not None and info.samplerate == sample_rate and info.frames > 0:
        return FileClip(path, info.frames)
    return read_audio(path, sample_rate)
