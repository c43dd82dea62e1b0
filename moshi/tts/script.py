"""From a script (turns of text) to entries: the words the TTS model will be fed, one by one.

The rules, as Kyutai's TTS applies them:

- in each turn, `:` becomes a space, `(` and `)` are dropped, `’` becomes `'`; words are
  what is left between white space, each encoded on its own by the SentencePiece model;
- `<break time="0.5s"/>` (anywhere, even inside a word) is an entry without tokens that
  forces round(seconds * 12.5) steps of silence;
- for a model with several speakers (one with a `speaker_wavs` conditioner), turns
  alternate between the main speaker (even turns, token 1) and the other one (odd turns,
  token 2); the first word of a turn is prefixed with its speaker's token when the
  speaker changed (empty turns, and turns with only breaks, change nothing);
- with `padding_between = p > 0`, a word entry forces max(0, p + len(tokens) - 1) steps
  of padding (during which its tokens are fed), so that words do not run into each other.

`ScriptBuilder` keeps the last speaker between calls, so a turn may arrive in pieces
(whole words at a time) and give the same entries as all at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..audio import FRAME_RATE

MAIN_SPEAKER = 1  # text token starting a turn of the main speaker (voice 1)
OTHER_SPEAKER = 2  # ... of the other speaker (voice 2)
_ANY_BREAK = re.compile(r"<break\b[^>]*>")
_BREAK = re.compile(r'<break\s+time="(\d+(?:\.\d*)?|\.\d+)s"\s*/>')
_REPLACE = str.maketrans({":": " ", "(": None, ")": None, "\u2019": "'"})


@dataclass(frozen=True)
class Entry:
    """One word (or one break) as fed to the model."""

    tokens: tuple[int, ...]  # fed one per step after the new-word token; () for a break
    text: str  # the word as spoken ("" for a break)
    padding: int  # steps of padding forced after the entry starts

    @property
    def is_break(self) -> bool:
        return not self.text


def break_steps(tag: str, frame_rate: float = FRAME_RATE) -> int:
    """`<break time="0.5s"/>` -> its length in steps (round half to even, as Python's round)."""
    m = _BREAK.fullmatch(tag)
    if m is None:
        raise ValueError(f'malformed break {tag!r}: write it as <break time="0.5s"/> (seconds)')
    return round(float(m.group(1)) * frame_rate)


def speaker_of_turn(index: int) -> int:
    """Turns alternate: even turns are the main speaker's, odd ones the other's."""
    return MAIN_SPEAKER if index % 2 == 0 else OTHER_SPEAKER


class ScriptBuilder:
    """Turns text into entries. `encode`: text -> SentencePiece ids (one word at a time)."""

    def __init__(self, encode: Callable[[str], list[int]], multi_speaker: bool, padding_between: int = 1):
        if padding_between < 0:
            raise ValueError(f"padding_between must be >= 0, got {padding_between}")
        self.encode = encode
        self.multi_speaker = multi_speaker
        self.padding_between = padding_between
        self.last_speaker: int | None = None

    def script(self, turns: Sequence[str]) -> list[Entry]:
        """A whole script: turn i is spoken by `speaker_of_turn(i)`."""
        if isinstance(turns, str):
            raise TypeError("a script is a list of turns (strings), not one string")
        out: list[Entry] = []
        for i, turn in enumerate(turns):
            out += self.text(turn, speaker_of_turn(i))
        return out

    def text(self, text: str, speaker: int = MAIN_SPEAKER) -> list[Entry]:
        """Entries of some text of one turn (whole words), spoken by `speaker`."""
        out: list[Entry] = []
        pos = 0
        for m in _ANY_BREAK.finditer(text):
            out += self._words(text[pos : m.start()], speaker)
            out.append(Entry((), "", break_steps(m.group(0))))
            pos = m.end()
        return out + self._words(text[pos:], speaker)

    def _words(self, text: str, speaker: int) -> list[Entry]:
        out = []
        for word in text.translate(_REPLACE).split():
            tokens = list(self.encode(word))
            if self.multi_speaker and speaker != self.last_speaker:
                tokens.insert(0, speaker)
                self.last_speaker = speaker
            p = self.padding_between
            out.append(Entry(tuple(tokens), word, max(0, p + len(tokens) - 1) if p > 0 else 0))
        return out


def split_complete(buffer: str) -> tuple[str, str]:
    """Text arriving piecewise: (what can be turned into entries now, what must wait for
    more text). A word is complete once white space or a break follows it; a `<break`
    tag is complete once its `>` arrived."""
    cut, in_tag = 0, False
    for i, c in enumerate(buffer):
        if in_tag:
            if c == ">":
                in_tag, cut = False, i + 1
        elif c == "<" and _could_be_break(buffer[i:]):
            in_tag = True
        elif c.isspace():
            cut = i + 1
    return buffer[:cut], buffer[cut:]


def _could_be_break(text: str) -> bool:
    """Whether text starting with '<' is, or may become, a break tag."""
    return "<break".startswith(text[: len("<break")])
