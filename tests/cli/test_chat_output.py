"""What `moshi chat` prints: Moshi's words as they come, and with a model that writes down what
it hears (FrameOut.heard), both sides of the conversation, a line per turn."""

import io
from types import SimpleNamespace

import numpy as np

from moshi.cli.chat import chat_local
from moshi.cli.chat_output import Printer, Recorder
from moshi.stream.engine import FrameOut

FRAME = np.zeros(1920, np.float32)


def test_each_turn_is_a_line_naming_its_speaker():
    out = io.StringIO()
    printer = Printer(out=out, err=io.StringIO())
    said = [(" what", "you"), (" color", "you"), (" it", "moshi"), (" is", "moshi"), (" hi", "you")]
    for piece, who in said:
        printer.text(piece, speaker=who)
    printer.end()
    assert out.getvalue() == "you: what color\nmoshi: it is\nyou: hi\n"


class _Engine:
    """Steps that give back a script of (Moshi's piece, the user's piece)."""

    def __init__(self, script: list[tuple[str | None, str | None]], user_turns: bool):
        self.tokenizer = SimpleNamespace(user_turns=user_turns)
        self.script = iter(script)

    def open_slot(self) -> int:
        return 0

    def step(self, frames: dict[int, np.ndarray]) -> dict[int, FrameOut]:
        text, heard = next(self.script)
        return {0: FrameOut(FRAME, 3, text, heard)}


class _Audio:
    def __init__(self, frames: int):
        self.frames = frames

    def read(self) -> np.ndarray | None:
        self.frames -= 1
        return FRAME if self.frames >= 0 else None

    def write(self, pcm: np.ndarray) -> None:
        pass

    def counters(self) -> tuple[int, int]:
        return (0, 0)


def _printed(script: list[tuple[str | None, str | None]], user_turns: bool) -> str:
    out = io.StringIO()
    printer = Printer(out=out, err=io.StringIO())
    chat_local(_Engine(script, user_turns), _Audio(len(script)), printer, Recorder())  # type: ignore[arg-type]
    printer.end()
    return out.getvalue()


def test_chat_shows_what_the_model_heard():
    script = [(None, " good"), (None, " evening"), (None, None), (" hello", None), (" there", None)]
    assert _printed(script, user_turns=True) == "you: good evening\nmoshi: hello there\n"
    assert _printed([(" hello", None), (None, None), (" there", None)], user_turns=False) == " hello there\n"
