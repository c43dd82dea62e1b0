"""Stereo dialogues in the training format (left: Moshi, right: the user) and mono utterances,
each with its word alignments `[[word, [start_s, end_s], speaker], ...]`.

A dialogue: Moshi sometimes greets first; then for each exchange the user asks (one voice
and one room for the whole dialogue: the augmentation is drawn once), and Moshi answers
after a natural gap. Sometimes the user says a backchannel ("okay") after the answer, and
sometimes the user interrupts: the next question starts while Moshi is still answering, and
Moshi stops at the end of the word it is saying a moment later (the words it did not say are
not in the alignments). Moshi never speaks while the user asks, apart from interruptions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from .augment import Augment, add_noise
from .grammar import Exchange
from .utterance import Word, speak
from .vocabulary import BACKCHANNELS

SPEAKER_MAIN = "SPEAKER_MAIN"  # Moshi (left channel), the label Kyutai's tools give the main speaker
SPEAKER_USER = "SPEAKER_USER"
REPLY_GAP_S = (0.25, 0.9)  # end of the question -> start of Moshi's answer
TURN_GAP_S = (0.4, 1.4)  # end of the answer -> the user's next question
EDGE_S = (0.3, 1.0)  # silence before the first and after the last word
P_BACKCHANNEL = 0.2
P_INTERRUPT = 0.1
REACTION_S = (0.15, 0.4)  # how long Moshi keeps talking once interrupted (then ends its word)

Alignment = list[tuple[str, tuple[float, float], str]]


@dataclass(frozen=True)
class DialogueSpec:
    exchanges: tuple[Exchange, ...]
    greeting: str | None  # Moshi's first words, before the user speaks (None: the user starts)
    seed: int


class _Tracks:
    """Audio placed at times on two channels, and the alignments of what was placed."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, int, np.ndarray]] = []  # (channel, start sample, [T])
        self.alignments: Alignment = []

    def put(self, channel: int, t: float, pcm: np.ndarray, words: list[Word], speaker: str) -> float:
        """Place an utterance starting at `t` seconds; returns the end of its last word."""
        start = round(t * SAMPLE_RATE)
        self.pieces.append((channel, start, pcm))
        t0 = start / SAMPLE_RATE
        self.alignments += [(w.text, (round(t0 + w.start, 4), round(t0 + w.end, 4)), speaker) for w in words]
        return t0 + words[-1].end

    def mix(self, tail_s: float) -> np.ndarray:
        end = max(s + len(p) for _, s, p in self.pieces) + round(tail_s * SAMPLE_RATE)
        out = np.zeros((end, 2), np.float32)
        for ch, s, p in self.pieces:
            out[s : s + len(p), ch] += p
        return np.clip(out, -1.0, 1.0)


def render_dialogue(
    spec: DialogueSpec, user: dict[str, np.ndarray], moshi: dict[str, np.ndarray]
) -> tuple[np.ndarray, Alignment]:
    """-> ([T, 2] float32 at 24 kHz: left Moshi, right the user; alignments sorted by start).

    `user` and `moshi` map words to their audio in the user's and Moshi's voices."""
    rng = random.Random(spec.seed)
    aug = Augment.draw(rng)
    tracks = _Tracks()
    t = rng.uniform(*EDGE_S)
    if spec.greeting:
        t = tracks.put(0, t, *speak(spec.greeting.split(), moshi, rng), SPEAKER_MAIN) + rng.uniform(
            *TURN_GAP_S
        )
    interrupt_at: float | None = None
    for i, ex in enumerate(spec.exchanges):
        q_end = tracks.put(1, t, *speak(ex.question.split(), user, rng, aug), SPEAKER_USER)
        pcm, words = speak(ex.answer.split(), moshi, rng)
        a_start = q_end + rng.uniform(*REPLY_GAP_S)
        last = i == len(spec.exchanges) - 1
        if not last and len(words) >= 3 and rng.random() < P_INTERRUPT:
            interrupt_at = a_start + rng.uniform(words[0].end, words[-2].end)
            stop = interrupt_at + rng.uniform(*REACTION_S) - a_start
            words = [w for w in words if w.start < stop] or words[:1]
            pcm = pcm[: round(words[-1].end * SAMPLE_RATE)]
        a_end = tracks.put(0, a_start, pcm, words, SPEAKER_MAIN)
        t = a_end + rng.uniform(*TURN_GAP_S)
        if interrupt_at is not None:
            t, interrupt_at = interrupt_at, None
        elif rng.random() < P_BACKCHANNEL:
            bc = rng.choice(BACKCHANNELS).split()
            t = tracks.put(1, a_end + rng.uniform(0.1, 0.4), *speak(bc, user, rng, aug), SPEAKER_USER)
            t += rng.uniform(*TURN_GAP_S)
    stereo = tracks.mix(rng.uniform(*EDGE_S))
    user_speech = np.concatenate([p for ch, _, p in tracks.pieces if ch == 1])
    stereo[:, 1] = add_noise(stereo[:, 1], user_speech, aug, rng)
    return stereo, sorted(tracks.alignments, key=lambda a: a[1][0])


def render_utterance(
    text: str, cache: dict[str, np.ndarray], seed: int, augmented: bool
) -> tuple[np.ndarray, Alignment]:
    """One speaker alone -> ([T] float32 at 24 kHz, alignments labelled SPEAKER_MAIN: the
    file's only speaker is its main one)."""
    rng = random.Random(seed)
    aug = Augment.draw(rng) if augmented else None
    pcm, words = speak(text.split(), cache, rng, aug)
    lead, tail = (np.zeros(round(rng.uniform(0.1, 0.4) * SAMPLE_RATE), np.float32) for _ in range(2))
    t0 = len(lead) / SAMPLE_RATE
    out = np.concatenate([lead, pcm, tail])
    if aug is not None:
        out = add_noise(out, pcm, aug, rng)
    return out, [(w.text, (round(t0 + w.start, 4), round(t0 + w.end, 4)), SPEAKER_MAIN) for w in words]
