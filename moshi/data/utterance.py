"""An utterance from cached words: the words' audio joined with short drawn pauses, then
(for a user) augmented; each word's start and end known to the sample."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from .augment import Augment, augment

WORD_GAP_S = (0.03, 0.15)  # the pause between two words of an utterance, drawn uniformly


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds
    end: float


def speak(
    words: list[str], cache: dict[str, np.ndarray], rng: random.Random, aug: Augment | None = None
) -> tuple[np.ndarray, list[Word]]:
    """The words spoken in a row -> ([T] float32 at 24 kHz, their times from the first sample).

    `cache` maps each word to its audio (`synth.synth_words`); missing words raise KeyError."""
    if not words:
        raise ValueError("expected at least one word, got none")
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    t = 0
    for i, w in enumerate(words):
        if i:
            gap = np.zeros(round(rng.uniform(*WORD_GAP_S) * SAMPLE_RATE), np.float32)
            pieces.append(gap)
            t += len(gap)
        pieces.append(cache[w])
        spans.append((t, t + len(cache[w])))
        t += len(cache[w])
    pcm = np.concatenate(pieces)
    speed = 1.0
    if aug is not None:
        pcm, speed = augment(pcm, aug), aug.speed
    scale = 1.0 / (SAMPLE_RATE * speed)
    return pcm, [Word(w, a * scale, b * scale) for w, (a, b) in zip(words, spans, strict=True)]
