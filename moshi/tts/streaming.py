"""Speech out as it is generated: each frame's audio tokens decoded through Mimi at once, so
the first audio is ready `delay_steps` steps after the start, long before the text is done.

    stream = SpeechStream(tts, mimi, ["Hello there."], voices=[...])
    for chunk in stream:          # one 80 ms chunk per frame
        play(chunk.pcm)
    stream.result.words           # the word timings, once done
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import FRAME_RATE
from ..codec import Mimi
from .text_input import TextInput
from .tts import TTS, TTSResult


@dataclass(frozen=True)
class SpeechChunk:
    pcm: np.ndarray  # [frame_size] float32 at Mimi's sample rate
    index: int  # chunk number (0: the first audio)

    @property
    def time(self) -> float:
        """Seconds from the start of the audio."""
        return self.index / FRAME_RATE


class SpeechStream:
    """Iterate once for the audio chunks; `result` is set when the iteration ends."""

    def __init__(
        self,
        tts: TTS,
        mimi: Mimi,
        text: Sequence[str] | TextInput,
        voices: Sequence[str | Path] = (),
        cfg: float | None = None,
        pace: bool = True,
    ):
        if mimi.total_codebooks < tts.model.config.dep_q:
            raise ValueError(
                f"this codec has {mimi.total_codebooks} codebooks, the model makes {tts.model.config.dep_q}"
            )
        self.tts, self.mimi = tts, mimi
        self.conditions = tts.conditions(voices, cfg)  # errors (voices, cfg) before any audio
        self.feeder = tts.feeder(text)
        self.pace = pace  # waiting for text: pad no faster than real time
        self.result: TTSResult | None = None

    @property
    def transcript(self) -> list[tuple[str, int]]:
        """The words started so far (word, step)."""
        return self.feeder.machine.transcript

    def __iter__(self) -> Iterator[SpeechChunk]:
        if self.result is not None:
            raise RuntimeError("a SpeechStream can be iterated only once")
        delay = self.tts.delay_steps
        frames = []
        device = next(self.mimi.parameters()).device
        with self.mimi.streaming(1):
            for frame in self.tts.frames([self.feeder], [self.conditions], self.pace):  # [1, 1 + n_q, 1]
                frames.append(frame)
                if len(frames) <= delay:  # the audio has not started yet
                    continue
                pcm = self.mimi.decode(frame[:, 1:].to(device))  # [1, 1, frame_size]
                yield SpeechChunk(pcm[0, 0].float().cpu().numpy(), len(frames) - 1 - delay)
        self.result = self.tts.collect([self.feeder], frames)[0]
