"""Scoring a dialogue model on the corpus' held-out dialogues (issue 13's dialogue bar).

From a dialogue's metadata (the `x.json` beside its stereo wav): the user's questions with
their times and the corpus' answers. From what the model did with the user's channel:
Moshi's audio [T] and its words with times. Per question, the reply window runs from the end
of the question to the start of the next one (or the end of the output); the reply starts
at the first frame of Moshi's channel louder than `SPEECH_RMS` in it. Moshi keeps quiet
while the user speaks when those frames are not louder than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..audio import FRAME_RATE, FRAME_SIZE, SAMPLE_RATE

MAIN_SPEAKER = "SPEAKER_MAIN"  # Moshi's words in the alignments; any other label: the user
SPEECH_RMS = 0.01  # an 80 ms frame louder than this (RMS, -40 dBFS) holds speech


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the corpus' answer: one of the grammar's for this question
    kind: str  # the grammar rule's kind: arithmetic, color, smalltalk, ...
    start: float  # seconds: the user's first word starts
    end: float  # the user's last word ends


@dataclass(frozen=True)
class Reply:
    question: Question
    stop: float  # seconds: the reply window ends (the next question starts, or the output ends)
    text: str  # Moshi's words in the reply window
    onset: float | None  # seconds: Moshi's first speech frame in the window (None: silent)

    def window(self, moshi: np.ndarray) -> np.ndarray:
        """Moshi's channel [T] -> the reply window of it."""
        return moshi[round(self.question.end * SAMPLE_RATE) : round(self.stop * SAMPLE_RATE)]

    @property
    def latency(self) -> float | None:
        """Seconds from the end of the question to the start of the reply."""
        return None if self.onset is None else self.onset - self.question.end


def questions(meta: dict) -> list[Question]:
    """The exchanges' questions, each found in order among the user's words (which also hold
    backchannels such as "okay"); a question not found is left out."""
    user = [(w, span) for w, span, who in meta["alignments"] if who != MAIN_SPEAKER]
    out, at = [], 0
    for ex in meta["exchanges"]:
        q = ex["question"].split()
        for i in range(at, len(user) - len(q) + 1):
            if [w for w, _ in user[i : i + len(q)]] == q:
                out.append(
                    Question(
                        ex["question"], ex["answer"], ex["kind"], user[i][1][0], user[i + len(q) - 1][1][1]
                    )
                )
                at = i + len(q)
                break
    return out


def user_speech(meta: dict) -> list[tuple[float, float]]:
    """(start, end) seconds of every word the user says."""
    return [(span[0], span[1]) for _, span, who in meta["alignments"] if who != MAIN_SPEAKER]


def speech_frames(pcm: np.ndarray) -> np.ndarray:
    """[T] -> [ceil(T / FRAME_SIZE)] bool: the 80 ms frames louder than SPEECH_RMS."""
    if pcm.ndim != 1:
        raise ValueError(f"expected mono audio [T], got shape {list(pcm.shape)}")
    n = -(-len(pcm) // FRAME_SIZE)
    frames = np.zeros(n * FRAME_SIZE, dtype=np.float64)
    frames[: len(pcm)] = pcm
    return np.sqrt((frames.reshape(n, FRAME_SIZE) ** 2).mean(1)) > SPEECH_RMS


def quiet_while_user_speaks(moshi: np.ndarray, user: Sequence[tuple[float, float]]) -> tuple[int, int]:
    """(frames where Moshi is quiet, frames) over the 80 ms frames whose middle falls in one
    of the user's words; moshi [T]: Moshi's channel, aligned with the user's."""
    loud = speech_frames(moshi)
    middles = (np.arange(len(loud)) + 0.5) / FRAME_RATE
    during = np.zeros(len(loud), dtype=bool)
    for start, end in user:
        during |= (middles >= start) & (middles < end)
    return int((during & ~loud).sum()), int(during.sum())


def replies(
    qs: Sequence[Question], moshi: np.ndarray, words: Sequence[tuple[str, float, float]]
) -> list[Reply]:
    """Each question's reply: `moshi` [T] Moshi's channel, `words` (text, start, end) its
    words in seconds of the same timeline."""
    loud = speech_frames(moshi)
    duration = len(loud) / FRAME_RATE
    out = []
    for i, q in enumerate(qs):
        stop = qs[i + 1].start if i + 1 < len(qs) else duration
        said = [w for w, start, _ in words if q.end <= start < stop]
        lo, hi = int(np.ceil(q.end * FRAME_RATE)), int(np.ceil(stop * FRAME_RATE))
        onset = next((t / FRAME_RATE for t in range(lo, min(hi, len(loud))) if loud[t]), None)
        out.append(Reply(q, stop, " ".join(said), onset))
    return out
