"""Word alignments for a folder of audio files, written by our speech-to-text (the role of
moshi-finetune's `annotate.py`, which uses whisper).

Each manifest entry `x.wav` gets `x.json` beside it (see alignments.py). Each channel is
transcribed on its own: in a stereo file the left channel (Moshi) is `SPEAKER_MAIN`, the
right one (the user) `SPEAKER_OTHER`; a mono file is all `SPEAKER_MAIN`.

The transcription here is a minimal greedy pass of a speech-to-text `LMModel` through the
`Generator`, with the silence prefix and text delay of the model's `stt_config`; word times
are the steps of their first and last pieces moved back by that shift.
TODO(integrator): use moshi.stt's transcription once that package exists.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import FRAME_RATE, FRAME_SIZE, AudioFileError, read_audio_channels
from ..codec import Mimi
from ..lm.generator import Generator
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from .alignments import MAIN_SPEAKER, OTHER_SPEAKER, AlignedWord, Entry, read_manifest, write_alignments
from .codes_cache import encode_channels

FLUSH_EXTRA_S = 0.5  # audio after the text delay, so that the last word surely comes out
log = logging.getLogger(__name__)


@dataclass
class AnnotateReport:
    written: list[Path] = field(default_factory=list)  # alignment files written
    kept: list[Path] = field(default_factory=list)  # already there (overwrite=False)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> files


def annotate(
    manifest: str | Path | Sequence[Entry],
    stt_model: LMModel,
    mimi: Mimi,
    tokenizer: TextTokenizer | str | Path,
    stt_config: Mapping[str, Any],
    *,
    overwrite: bool = False,
    on_file: Callable[[Path], None] | None = None,
) -> AnnotateReport:
    """Write `x.json` beside each entry's audio. `stt_config`: the speech-to-text model's
    (`audio_silence_prefix_seconds`, `audio_delay_seconds`). Existing files are kept unless
    `overwrite`; an unreadable audio file is logged, skipped and counted."""
    tok = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
    _Timing.of(stt_config)  # checked before any work
    entries = read_manifest(manifest) if isinstance(manifest, (str, Path)) else list(manifest)
    report = AnnotateReport()
    for entry in entries:
        target = entry.alignments_path
        if target.exists() and not overwrite:
            report.kept.append(target)
            continue
        try:
            pcm = read_audio_channels(entry.path, mimi.sample_rate)  # [C, T]
        except AudioFileError as e:
            report.skipped["unreadable audio"] += 1
            log.warning("skipped %s", e)
            continue
        channels = transcribe_channels(stt_model, mimi, tok, pcm, stt_config)
        speakers = [MAIN_SPEAKER, OTHER_SPEAKER] if len(channels) == 2 else [MAIN_SPEAKER] * len(channels)
        words = [
            AlignedWord(text, start, end, speaker)
            for speaker, found in zip(speakers, channels, strict=True)
            for text, start, end in found
        ]
        write_alignments(target, sorted(words, key=lambda w: w.start))
        report.written.append(target)
        if on_file is not None:
            on_file(target)
    return report


@dataclass(frozen=True)
class _Timing:
    prefix_frames: int  # silence before the audio
    delay_s: float  # how far the text lags the audio

    @classmethod
    def of(cls, stt_config: Mapping[str, Any]) -> _Timing:
        try:
            prefix = float(stt_config["audio_silence_prefix_seconds"])
            delay = float(stt_config["audio_delay_seconds"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                "stt_config needs numbers audio_silence_prefix_seconds and audio_delay_seconds, "
                f"got {dict(stt_config)}"
            ) from e
        return cls(math.ceil(prefix * FRAME_RATE), delay)

    @property
    def shift_s(self) -> float:
        return self.prefix_frames / FRAME_RATE + self.delay_s


@torch.no_grad()
def transcribe_channels(
    lm: LMModel, mimi: Mimi, tokenizer: TextTokenizer, pcm: np.ndarray, stt_config: Mapping[str, Any]
) -> list[list[tuple[str, float, float]]]:
    """pcm [C, T] at Mimi's rate -> per channel, its words (text, start s, end s), each
    channel a stream of its own (greedy decoding)."""
    if pcm.ndim != 2:
        raise ValueError(f"pcm must be [C, T], got shape {list(pcm.shape)}")
    timing = _Timing.of(stt_config)
    C, T = pcm.shape
    flush = math.ceil((timing.delay_s + FLUSH_EXTRA_S) * FRAME_RATE)
    padded = np.zeros((C, (timing.prefix_frames + flush) * FRAME_SIZE + T), dtype=np.float32)
    padded[:, timing.prefix_frames * FRAME_SIZE :][:, :T] = pcm
    codes = encode_channels(mimi, padded, lm.config.n_q).to(lm.device)  # [C, n_q, S]
    gen = Generator(lm, temp=0.0, temp_text=0.0, cuda_graphs=False)
    steps = []
    with gen.streaming(C):
        for t in range(codes.shape[-1]):
            out = gen.step(codes[:, :, t : t + 1])
            assert out is not None, "a speech-to-text model gives a token at every step"
            steps.append(out[:, 0, 0].cpu())
    tokens = torch.stack(steps, dim=1).tolist()  # [C, S]
    duration = T / mimi.sample_rate
    return [_words(row, tokenizer, lm.config.text_end_padding_id, timing.shift_s, duration) for row in tokens]


def _words(
    tokens: list[int], tokenizer: TextTokenizer, end_of_padding: int, shift: float, duration: float
) -> list[tuple[str, float, float]]:
    """A word starts after an end-of-padding token or at a piece starting with a space; it
    runs from its first piece's step to one step after its last, moved back by `shift`."""
    groups: list[list[int]] = []  # [first step, last step, tokens...]
    new = True
    for t, token in enumerate(tokens):
        piece = None if token == end_of_padding else tokenizer.piece(token)
        if piece is None:
            new = new or token == end_of_padding
            continue
        if new or not groups or piece.startswith(" "):
            groups.append([t, t])
        groups[-1][1] = t
        groups[-1].append(token)
        new = False

    def seconds(step: int) -> float:
        return round(min(max(step / FRAME_RATE - shift, 0.0), duration), 3)

    found = [(tokenizer.decode(g[2:]).strip(), seconds(g[0]), seconds(g[1] + 1)) for g in groups]
    return [w for w in found if w[0]]
