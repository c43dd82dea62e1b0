"""Live speech-to-text: 80 ms frames in (a microphone), text and timed words out as soon as
the model writes them.

    with LiveTranscriber(lm, mimi, tokenizer, files.config.stt_config) as live:
        for frame in microphone:              # [FRAME_SIZE] float32 at 24 kHz each
            heard = live.push(frame)
            print(heard.text, end="")         # the text pieces of this frame
        live.flush()                          # the last words come out
        transcript = live.transcript          # all words, with times

Entering feeds the model its silence prefix (what it writes then comes with the first
`push`); `flush` feeds the silence after the input that brings the last words out. Each
frame is one Mimi call and one LM step, so the result is exactly `transcribe(...,
chunk_frames=1)` on the audio pushed (whole frames). A word is complete (`heard.words`)
when the next one starts; its pieces show in `heard.text` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..audio import FRAME_RATE, FRAME_SIZE
from ..codec import Mimi
from ..lm.model import LMModel
from ..lm.text import TextTokenizer
from .steps import SttSteps, SttTiming, TurnDetector
from .transcript import Transcript, Word, WordAssembler


@dataclass(frozen=True)
class Heard:
    """What one `push` brought."""

    text: str  # the text pieces the model wrote (a word's first piece starts with a space)
    words: list[Word] = field(default_factory=list)  # words completed, with times
    end_of_turn: list[float] = field(default_factory=list)  # ends of turns found (vad=True)


class LiveTranscriber:
    """One live stream of speech-to-text; use inside `with` (it holds the streaming state)."""

    def __init__(
        self,
        lm: LMModel,
        mimi: Mimi,
        tokenizer: TextTokenizer,
        timing: SttTiming | Mapping[str, Any] | None = None,
        vad: bool = False,
    ):
        self.steps = SttSteps(lm, mimi, vad)
        self.timing = SttTiming.of(timing)
        self.tokenizer = tokenizer
        self.end_of_padding_id = eop = lm.config.text_end_padding_id
        self.assembler = WordAssembler(
            tokenizer, frame_rate=FRAME_RATE, shift=self.timing.shift, end_of_padding_id=eop
        )
        self.turns = TurnDetector(lm, self.timing) if vad else None
        self.frames = 0  # audio frames pushed
        self.words: list[Word] = []
        self.end_of_turn: list[float] = []
        self._stack: ExitStack | None = None
        self._flushed = False
        self._carry = Heard("")  # what the model wrote during the silence prefix

    @property
    def seconds(self) -> float:
        """Seconds of audio pushed."""
        return self.frames / FRAME_RATE

    def __enter__(self) -> LiveTranscriber:
        self._stack = ExitStack()
        self._stack.enter_context(self.steps.streaming(1))
        self._carry = self._feed(np.zeros(self.timing.prefix_frames * FRAME_SIZE, dtype=np.float32))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def push(self, pcm: np.ndarray | torch.Tensor) -> Heard:
        """pcm: [n * FRAME_SIZE] (whole 80 ms frames, 24 kHz mono) -> what the model wrote."""
        pcm = np.asarray(pcm.detach().cpu() if isinstance(pcm, torch.Tensor) else pcm, dtype=np.float32)
        if pcm.ndim != 1 or len(pcm) % FRAME_SIZE:
            raise ValueError(f"expected [n * {FRAME_SIZE}] (whole frames), got shape {list(pcm.shape)}")
        self._check_open()
        self.frames += len(pcm) // FRAME_SIZE
        return _joined(self._take_carry(), self._feed(pcm))

    def flush(self) -> Heard:
        """The end of the input: the silence after it, which brings the last words out."""
        self._check_open()
        heard = self._take_carry()  # (the prefix's words, if no audio came)
        tail = self._feed(np.zeros(self.timing.flush_frames * FRAME_SIZE, dtype=np.float32))
        last = self.assembler.finish(self.seconds)
        self.words += last
        self._flushed = True
        return _joined(heard, tail, Heard("", last))

    @property
    def transcript(self) -> Transcript:
        """The words so far (all of them after `flush`), and the ends of turns with vad=True."""
        return Transcript(list(self.words), list(self.end_of_turn) if self.turns is not None else None)

    def _take_carry(self) -> Heard:
        carry, self._carry = self._carry, Heard("")
        return carry

    def _check_open(self) -> None:
        if self._stack is None or self._flushed:
            raise RuntimeError("push and flush go inside `with LiveTranscriber(...) as live:`, before flush")

    def _feed(self, pcm: np.ndarray) -> Heard:
        text, words, turns = [], [], []
        duration = self.seconds  # times are clamped to the audio heard
        for i in range(0, len(pcm), FRAME_SIZE):
            tokens, probs = self.steps.run(torch.from_numpy(pcm[None, i : i + FRAME_SIZE]))
            token = int(tokens[0, 0])
            if token != self.end_of_padding_id and (piece := self.tokenizer.piece(token)) is not None:
                text.append(piece)
            words += self.assembler.push(token, duration)
            if self.turns is not None and probs is not None:
                end = self.turns.push(token, float(probs[0, 0]), duration)
                turns += [] if end is None else [end]
        self.words += words
        self.end_of_turn += turns
        return Heard("".join(text), words, turns)


def _joined(*parts: Heard) -> Heard:
    return Heard(
        "".join(h.text for h in parts),
        [w for h in parts for w in h.words],
        [t for h in parts for t in h.end_of_turn],
    )
