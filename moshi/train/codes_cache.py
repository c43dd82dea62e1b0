"""Mimi codes of audio files, encoded once and kept on disk across runs.

    <cache_dir>/<codec fingerprint>/<sha256 of the file>-q<num_codebooks>.safetensors
        codes [C, num_codebooks, F] int16 (C: the file's channels, F: ceil(samples / 1920))

The codec fingerprint hashes what makes the codes (Mimi's config and its encoder's and
quantizer's weights), so codes of another codec (or of a retrained encoder) are never mixed
up, and a retrained decoder keeps its cache; keying on the file's content means renamed or copied
files hit the cache and edited files miss it. Files are written atomically (several
processes may fill one cache); the folder can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..audio import read_audio_channels
from ..codec import Mimi
from ..codec.config import DECODER_FIELDS

ENCODE_CHUNK_FRAMES = 16  # frames per streaming Mimi call: memory stays flat on long files
_HASH_BLOCK = 1 << 20


def codec_fingerprint(mimi: Mimi) -> str:
    """A hash of what makes Mimi's codes: its config (the decoder's own fields and fields
    left at None excepted, so optional fields added later keep the fingerprints of the codecs
    made before them) and the weights of its encoding modules (names, shapes, dtypes, values).
    A codec whose decoder alone was retrained or widened shares its codes, and so its cache."""
    config = {k: v for k, v in asdict(mimi.config).items() if v is not None and k not in DECODER_FIELDS}
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for prefix, module in mimi.encoding.items():
        for name, t in sorted(module.state_dict().items()):
            h.update(f"{prefix}.{name}:{list(t.shape)}:{t.dtype}".encode())
            h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


class CodesCache:
    """`store(path)`: the cache file of an audio file's codes, encoded when missing;
    `codes(path)`: the codes [C, num_codebooks, F] int64. `encoded` counts the files this
    object had to encode. `tail_frames`: the file is encoded followed by that many frames of
    silence (their codes are those of silence after this file: the codec is causal)."""

    def __init__(self, folder: str | Path, mimi: Mimi, num_codebooks: int, tail_frames: int = 0):
        if not 1 <= num_codebooks <= mimi.total_codebooks:
            raise ValueError(f"num_codebooks must be in [1, {mimi.total_codebooks}], got {num_codebooks}")
        if tail_frames < 0:
            raise ValueError(f"tail_frames must be >= 0, got {tail_frames}")
        self.mimi, self.num_codebooks, self.tail_frames = mimi, num_codebooks, tail_frames
        self.folder = Path(folder) / codec_fingerprint(mimi)
        self.encoded = 0

    def store(self, audio: Path) -> Path:
        """The cache file of `audio`'s codes, encoding them first when missing. Raises
        AudioFileError (a ValueError naming the file) for unreadable audio."""
        from safetensors.torch import save_file

        tail = f"-t{self.tail_frames}" if self.tail_frames else ""
        stored = self.folder / f"{file_digest(audio)}-q{self.num_codebooks}{tail}.safetensors"
        if stored.is_file():
            return stored
        pcm = read_audio_channels(audio, self.mimi.sample_rate)  # [C, T]
        codes = encode_channels(self.mimi, pcm, self.num_codebooks, self.tail_frames)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = stored.with_name(f".{stored.name}.{os.getpid()}.tmp")
        dtype = torch.int16 if self.mimi.cardinality <= torch.iinfo(torch.int16).max else torch.int32
        save_file({"codes": codes.to(dtype).contiguous()}, str(partial))
        os.replace(partial, stored)
        self.encoded += 1
        return stored

    def codes(self, audio: Path) -> Tensor:
        return load_codes(self.store(audio))


def codes_shape(stored: Path) -> tuple[int, ...]:
    """[C, K, F] of a cache file, without reading the codes."""
    from safetensors import safe_open

    with safe_open(str(stored), "pt") as f:
        return tuple(f.get_slice("codes").get_shape())


def load_codes(stored: Path, start: int = 0, stop: int | None = None) -> Tensor:
    """Frames [start, stop) of a cache file's codes: [C, K, F'] int64."""
    from safetensors import safe_open

    with safe_open(str(stored), "pt") as f:
        codes = f.get_slice("codes")
        stop = codes.get_shape()[-1] if stop is None else stop
        return codes[:, :, start:stop].long()


@torch.no_grad()
def encode_channels(mimi: Mimi, pcm: np.ndarray, num_codebooks: int, tail_frames: int = 0) -> Tensor:
    """pcm [C, T] float32 at Mimi's rate -> codes [C, num_codebooks, ceil(T / frame_size) +
    tail_frames] int64 (cpu), each channel its own stream, the last frame padded with
    silence, then `tail_frames` frames of silence."""
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise ValueError(f"pcm must be [C, T] with T > 0, got shape {list(pcm.shape)}")
    size = mimi.frame_size
    frames = -(-pcm.shape[1] // size) + tail_frames
    padded = np.zeros((pcm.shape[0], 1, frames * size), dtype=np.float32)
    padded[:, 0, : pcm.shape[1]] = pcm
    x = torch.from_numpy(padded).to(next(mimi.parameters()).device)
    # A streaming chunk must fit in the codec transformers' context (at the encoder's rate).
    chunk = size * max(1, min(ENCODE_CHUNK_FRAMES, mimi.config.context // mimi.config.downsample_stride))
    before = mimi.num_codebooks
    mimi.set_num_codebooks(num_codebooks)
    try:
        with mimi.streaming(pcm.shape[0]):
            out = [mimi.encode(x[..., i : i + chunk]) for i in range(0, x.shape[-1], chunk)]
    finally:
        mimi.set_num_codebooks(before)
    return torch.cat(out, dim=-1).cpu()
