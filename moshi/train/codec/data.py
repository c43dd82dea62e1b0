"""Codec training audio: the files of a moshi-finetune manifest (`{"path": ..., "duration":
...}` per line, paths relative to the manifest), read once into memory as mono at the
codec's rate, served as random crops. A file that cannot be read is skipped and named."""

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


class AudioCrops:
    """Random crops of `crop` samples from `clips` ([T_i] float32 each; shorter ones are
    zero-padded), a clip drawn in proportion to its length."""

    def __init__(self, clips: list[np.ndarray], crop: int):
        if not clips:
            raise ValueError("no audio to train on")
        self.clips = [torch.from_numpy(np.pad(c, (0, max(crop - len(c), 0)))) for c in clips]
        self.crop = crop
        self.weights = torch.tensor([float(len(c)) for c in self.clips])

    @classmethod
    def from_manifest(cls, manifest: str | Path, sample_rate: int, crop: int) -> AudioCrops:
        clips, skipped = [], 0
        for path in manifest_paths(manifest):
            try:
                clips.append(read_audio(path, sample_rate))
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
            start = int(torch.randint(len(clip) - self.crop + 1, (1,), generator=generator))
            crops.append(clip[start : start + self.crop])
        return torch.stack(crops)[:, None]
