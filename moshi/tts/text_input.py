"""Text that arrives while the TTS speaks (an LLM piping its tokens in), and the per-item
feeder that turns text into entries for the word state machine.

    text = TextInput()
    # another thread: text.write("Hello the"); text.write("re, how are"); text.close()
    for chunk in SpeechStream(tts, mimi, text, voices=[...]): play(chunk.pcm)

Pieces may cut words anywhere: a word is only fed once white space (or a break, or the end
of the text) follows it. When the machine runs out of words before the text is complete,
the model pads (silence) until more words come; it ends only after `close()`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .script import ScriptBuilder, speaker_of_turn, split_complete
from .state_machine import WordStateMachine


class TextInput:
    """A thread-safe queue of text pieces and turn changes, closed once complete."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pieces: list[str | None] = []  # None: a new turn starts (the other speaker)
        self._closed = False

    def write(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"write() takes text, got {type(text).__name__}")
        self._put(text)

    def new_turn(self) -> None:
        """What follows is the next turn (speakers alternate, as in a script's turns)."""
        self._put(None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def take(self) -> tuple[list[str | None], bool]:
        """Everything written since the last call, and whether the text is complete."""
        with self._cond:
            pieces, self._pieces = self._pieces, []
            return pieces, self._closed

    def wait(self, timeout: float) -> None:
        """Block until something is written or closed, at most `timeout` seconds."""
        with self._cond:
            if not self._pieces and not self._closed:
                self._cond.wait(timeout)

    def _put(self, piece: str | None) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("this text input is closed")
            self._pieces.append(piece)
            self._cond.notify_all()


class Feeder:
    """One batch item's text: a whole script up front, or a `TextInput` read as it comes."""

    def __init__(self, builder: ScriptBuilder, machine: WordStateMachine, source: TextInput | None = None):
        self.builder, self.machine, self.source = builder, machine, source
        self.turn = 0
        self._buffer = ""

    @classmethod
    def of_script(cls, builder: ScriptBuilder, machine: WordStateMachine, turns: Sequence[str]) -> Feeder:
        machine.entries.extend(builder.script(turns))
        machine.close()
        return cls(builder, machine)

    @property
    def starved(self) -> bool:
        """Out of words while more text may come."""
        return self.source is not None and self.machine.waiting

    def poll(self) -> None:
        """Move the text that arrived into the machine."""
        if self.source is None or self.machine.complete:
            return
        pieces, closed = self.source.take()
        for piece in pieces:
            if piece is None:
                self._flush()
                self.turn += 1
                continue
            complete, self._buffer = split_complete(self._buffer + piece)
            self._push(complete)
        if closed:
            self._flush()
            self.machine.close()

    def _flush(self) -> None:
        self._push(self._buffer)
        self._buffer = ""

    def _push(self, text: str) -> None:
        if text:
            self.machine.push(self.builder.text(text, speaker_of_turn(self.turn)))
