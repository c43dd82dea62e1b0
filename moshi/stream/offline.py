"""Offline dialogues: whole user recordings through the real-time `Engine`, one slot each
(what `moshi infer` does; usable from Python).

A recording is fed frame by frame, as a microphone would, then silence, so that Moshi can
finish what it is saying: the run of a recording ends once Moshi's text has been padding
for `QUIET_SECONDS` after the input, or `max_tail_frames` after it. Moshi's audio comes one
step late (the engine returns nothing for the first frame), so its frame k, which is about
the same moment as the user's frame k, arrives at step k + 1; the outputs are aligned with
the input and last as long as the input (in whole frames) plus the tail.

Recordings beyond the engine's slots wait for a slot to free up, so any number of files
runs as one batch of at most `max_sessions` at a time. Every slot gets the same sampling
options (and seed), so a recording's reply does not depend on what else is in the batch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..audio import FRAME_RATE, FRAME_SIZE
from ..lm.sampling import SamplingOptions
from ..lm.text import TextTokenizer
from ..stt.transcript import Transcript, timed_words
from .engine import Engine, FrameOut

QUIET_SECONDS = 2.0  # after the input, stop once Moshi's text has been padding this long
QUIET_FRAMES = math.ceil(QUIET_SECONDS * FRAME_RATE)


@dataclass
class Dialogue:
    """One recording's run: what goes in, and what Moshi said."""

    user: np.ndarray  # [N, FRAME_SIZE] float32, the input cut into frames (the last zero-padded)
    max_tail_frames: int
    moshi: list[np.ndarray] = field(default_factory=list)  # [FRAME_SIZE] per output frame
    tokens: list[int] = field(default_factory=list)  # Moshi's text token per output frame
    heard: list[str] = field(default_factory=list)  # the user's words as the model wrote them
    fed: int = 0
    quiet: int = 0  # output frames after the input in a row where Moshi's text was padding

    @classmethod
    def of(cls, pcm: np.ndarray, max_tail_frames: int) -> Dialogue:
        n = max(1, math.ceil(len(pcm) / FRAME_SIZE))
        frames = np.zeros(n * FRAME_SIZE, dtype=np.float32)
        frames[: len(pcm)] = pcm
        return cls(frames.reshape(n, FRAME_SIZE), max_tail_frames)

    @property
    def input_frames(self) -> int:
        return len(self.user)

    def next_frame(self) -> np.ndarray:
        i, self.fed = self.fed, self.fed + 1
        return self.user[i] if i < self.input_frames else np.zeros(FRAME_SIZE, dtype=np.float32)

    def take(self, out: FrameOut) -> None:
        if out.pcm is None or out.text_token is None:
            return  # the engine's first step: nothing yet
        self.moshi.append(out.pcm)
        self.tokens.append(out.text_token)
        if out.heard is not None:
            self.heard.append(out.heard)
        if len(self.moshi) > self.input_frames:
            self.quiet = self.quiet + 1 if out.text is None else 0

    @property
    def done(self) -> bool:
        n = len(self.moshi)
        return n >= self.input_frames + self.max_tail_frames or (
            n >= self.input_frames and self.quiet >= QUIET_FRAMES
        )

    def moshi_pcm(self) -> np.ndarray:
        """[T] Moshi's voice, T = output frames * FRAME_SIZE."""
        return np.concatenate(self.moshi) if self.moshi else np.zeros(0, dtype=np.float32)

    def stereo_pcm(self) -> np.ndarray:
        """[T, 2]: the user (padded with silence) left, Moshi right."""
        moshi = self.moshi_pcm()
        user = np.zeros_like(moshi)
        flat = self.user.reshape(-1)[: len(moshi)]
        user[: len(flat)] = flat
        return np.stack([user, moshi], axis=1)

    def heard_text(self) -> str:
        """What the model wrote down of the user's words (models that do: lm/text.py Turns)."""
        return "".join(self.heard).strip()

    def transcript(self, tokenizer: TextTokenizer, end_of_padding_id: int = 0) -> Transcript:
        """What Moshi said, word by word, in seconds of the output."""
        words = timed_words(
            self.tokens,
            tokenizer,
            frame_rate=FRAME_RATE,
            shift=0.0,
            duration=len(self.moshi) / FRAME_RATE,
            end_of_padding_id=end_of_padding_id,
        )
        return Transcript(words)


def run_dialogues(
    engine: Engine,
    dialogues: list[Dialogue],
    options: SamplingOptions,
    on_done: Callable[[int, Dialogue], None],
    on_steps: Callable[[int], None] | None = None,
) -> None:
    """Run every dialogue through `engine` (started), as many at once as it has slots;
    `on_done(index, dialogue)` is called as each one finishes."""
    waiting = deque(enumerate(dialogues))
    running: dict[int, tuple[int, Dialogue]] = {}  # slot -> (index, dialogue)
    while waiting or running:
        while waiting and engine.free_slots:
            running[engine.open_slot(options)] = waiting.popleft()
        outs = engine.step({slot: d.next_frame() for slot, (_, d) in running.items()})
        for slot, out in outs.items():
            index, d = running[slot]
            d.take(out)
            if d.done:
                engine.close_slot(slot)
                del running[slot]
                on_done(index, d)
        if on_steps is not None:
            on_steps(len(outs))
