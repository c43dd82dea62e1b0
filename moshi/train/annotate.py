"""Word alignments for a folder of audio files, written by our speech-to-text (the role of
moshi-finetune's `annotate.py`, which uses whisper).

Each manifest entry `x.wav` gets `x.json` beside it (see alignments.py). Each channel is
transcribed on its own (`moshi.stt.transcribe_batch`, the channels as one batch): in a
stereo file the left channel (Moshi) is `SPEAKER_MAIN`, the right one (the user)
`SPEAKER_OTHER`; a mono file is all `SPEAKER_MAIN`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio import AudioFileError, read_audio_channels
from ..codec import Mimi
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from ..stt import SttTiming, transcribe_batch
from .alignments import MAIN_SPEAKER, OTHER_SPEAKER, AlignedWord, Entry, read_manifest, write_alignments

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
    (`audio_silence_prefix_seconds`, `audio_delay_seconds`; missing: Kyutai's defaults).
    Existing files are kept unless
    `overwrite`; an unreadable audio file is logged, skipped and counted."""
    tok = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
    timing = SttTiming.from_config(stt_config)  # checked before any work
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
        channels = transcribe_batch(stt_model, mimi, list(pcm), tok, timing)
        speakers = [MAIN_SPEAKER, OTHER_SPEAKER] if len(channels) == 2 else [MAIN_SPEAKER] * len(channels)
        words = [
            AlignedWord(w.text, w.start, w.end, speaker)
            for speaker, transcript in zip(speakers, channels, strict=True)
            for w in transcript.words
        ]
        write_alignments(target, sorted(words, key=lambda w: w.start))
        report.written.append(target)
        if on_file is not None:
            on_file(target)
    return report
