"""Timed words from a stream of text tokens (one per 80 ms step), and their output formats.

Kyutai's models write a text token at every step: PAD while no word is said, END_OF_PADDING
(token 0) just before a word starts, then the word's pieces. A word therefore starts at
token 0 or at a piece that begins with a space mark ("▁"). Its start is the step of its
first piece, moved back by `shift` seconds (the text's delay behind the audio, plus any
silence put before the input); it ends where the next word (or a lone space mark) starts,
the last word one step after its last piece. Times are clamped to [0, duration] of the
input, so they are monotonic and inside the audio. `WordAssembler` does this step by step
(live transcription), `timed_words` on a whole token list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..lm.text import TextTokenizer

MAX_CUE_CHARS = 42  # subtitles: a cue holds at most this much text,
MAX_CUE_SECONDS = 5.0  # and lasts at most this long (its words allowing),
MIN_CUE_SECONDS = 0.5  # and at least this long, or until the next cue starts


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds of the input
    end: float


@dataclass(frozen=True)
class Transcript:
    words: list[Word]
    end_of_turn: list[float] | None = field(default=None)  # seconds; None unless asked for

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "text": self.text,
            "words": [{"text": w.text, "start": w.start, "end": w.end} for w in self.words],
        }
        if self.end_of_turn is not None:
            out["end_of_turn"] = self.end_of_turn
        return out


def timed_words(
    tokens: Sequence[int],
    tokenizer: TextTokenizer,
    *,
    frame_rate: float,
    shift: float,
    duration: float,
    end_of_padding_id: int = 0,
) -> list[Word]:
    """tokens[t]: the text token of step t -> words with times in seconds of the input."""
    words = WordAssembler(tokenizer, frame_rate=frame_rate, shift=shift, end_of_padding_id=end_of_padding_id)
    out = [w for token in tokens for w in words.push(token, duration)]
    return out + words.finish(duration)


class WordAssembler:
    """Text tokens in, one step at a time; words out as soon as they are complete: a word is
    complete when the next one starts (its end is that start), the last one at `finish`.
    `duration`: seconds of input heard so far (times are clamped to it)."""

    def __init__(
        self, tokenizer: TextTokenizer, *, frame_rate: float, shift: float, end_of_padding_id: int = 0
    ):
        self.tokenizer, self.frame_rate, self.shift = tokenizer, frame_rate, shift
        self.end_of_padding_id = end_of_padding_id
        self.steps = 0  # tokens pushed
        self._first = self._last = 0  # steps of the first and last pieces of the word being read
        self._tokens: list[int] = []
        self._boundary = True  # the next piece starts a word

    def push(self, token: int, duration: float) -> list[Word]:
        """The text token of the next step -> the word it completed (none, or one)."""
        t, self.steps = self.steps, self.steps + 1
        if token == self.end_of_padding_id:
            self._boundary = True
            return []
        piece = self.tokenizer.piece(token)
        if piece is None:  # padding (or outside the vocabulary)
            return []
        if self._tokens and not self._boundary and not piece.startswith(" "):
            self._last = t
            self._tokens.append(token)
            return []
        done = self._word(end_step=t, duration=duration)
        self._first, self._last, self._tokens, self._boundary = t, t, [token], False
        return done

    def finish(self, duration: float) -> list[Word]:
        """The last word (if any), ending one step after its last piece."""
        done = self._word(end_step=self._last + 1, duration=duration)
        self._tokens, self._boundary = [], True
        return done

    def _word(self, end_step: int, duration: float) -> list[Word]:
        text = self.tokenizer.decode(self._tokens).strip() if self._tokens else ""
        if not text:  # nothing read yet, or only a space mark
            return []

        def clamp(step: int) -> float:
            return min(max(round(step / self.frame_rate - self.shift, 3), 0.0), duration)

        start = clamp(self._first)
        return [Word(text, start, max(start, clamp(end_step)))]


# -- formats ---------------------------------------------------------------------------------
FORMATS = ("txt", "json", "srt", "vtt")


def render(t: Transcript, fmt: str) -> str:
    if fmt == "txt":
        return _txt(t)
    if fmt == "json":
        return json.dumps(t.to_dict(), ensure_ascii=False) + "\n"
    if fmt in ("srt", "vtt"):
        return _subtitles(t, fmt)
    raise ValueError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")


def _txt(t: Transcript) -> str:
    """The text; with end-of-turn times, one line per turn."""
    if not t.end_of_turn:
        return t.text + "\n"
    return "\n".join(" ".join(w.text for w in turn) for turn in _split(t.words, t.end_of_turn)) + "\n"


def _split(words: list[Word], breaks: list[float]) -> list[list[Word]]:
    """Words cut into runs at the given times (a word starting at or after a break opens a run)."""
    runs: list[list[Word]] = [[]]
    pending = sorted(breaks)
    for w in words:
        if pending and w.start >= pending[0] and runs[-1]:
            runs.append([])
        while pending and w.start >= pending[0]:
            pending.pop(0)
        runs[-1].append(w)
    return [r for r in runs if r]


def cues(t: Transcript) -> list[Word]:
    """Subtitle cues: words grouped up to MAX_CUE_CHARS / MAX_CUE_SECONDS, never across a
    turn. A cue is never empty in time: words clamped to the input's ends (said during the
    silence around it) have no length, so a cue lasts at least MIN_CUE_SECONDS, or until the
    next cue starts if that is sooner (but later than this one's start)."""
    grouped: list[Word] = []
    for run in _split(t.words, t.end_of_turn or []):
        cue: list[Word] = []
        for w in run:
            text = " ".join(x.text for x in [*cue, w])
            if cue and (len(text) > MAX_CUE_CHARS or w.end - cue[0].start > MAX_CUE_SECONDS):
                grouped.append(_join(cue))
                cue = []
            cue.append(w)
        if cue:
            grouped.append(_join(cue))
    out = []
    for i, c in enumerate(grouped):
        later = [n.start for n in grouped[i + 1 :] if n.start > c.start]
        floor = min([c.start + MIN_CUE_SECONDS, *later[:1]])
        out.append(Word(c.text, c.start, round(max(c.end, floor), 3)))
    return out


def _join(words: list[Word]) -> Word:
    return Word(" ".join(w.text for w in words), words[0].start, words[-1].end)


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _subtitles(t: Transcript, fmt: str) -> str:
    sep = "," if fmt == "srt" else "."
    blocks = ["WEBVTT\n"] if fmt == "vtt" else []
    for i, c in enumerate(cues(t), 1):
        number = f"{i}\n" if fmt == "srt" else ""
        blocks.append(f"{number}{_stamp(c.start, sep)} --> {_stamp(c.end, sep)}\n{c.text}\n")
    return "\n".join(blocks)
