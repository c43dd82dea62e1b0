"""What `moshi chat` shows and keeps, locally or with --url: the words and audio problems
(`Printer`), and both voices for --save (`Recorder`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from ..audio import write_wav

STATUS_EVERY_SECONDS = 2.0  # audio problems are reported at most this often


class Printer:
    """Moshi's words on stdout as they come; audio problems on stderr, on their own line."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self._line_open = False
        self._speaker: str | None = None  # whose words the open line holds, when lines name it
        self._last = (0, 0)
        self._reported_at = 0.0

    @property
    def line_open(self) -> bool:
        """Text was printed since the last line break."""
        return self._line_open

    def text(self, piece: str, speaker: str | None = None) -> None:
        """A piece of text as it comes; with a `speaker`, each change of speaker starts a line
        that names them ("you: what color is the coal", then "moshi: it is black")."""
        if speaker is not None and speaker != self._speaker:
            self.end()
            self.out.write(f"{speaker}:")
            self._speaker = speaker
        self.out.write(piece)
        self.out.flush()
        self._line_open = True

    def status(self, message: str) -> None:
        same = self.out is self.err or (self.out.isatty() and self.err.isatty())
        if same:  # (the text and the status share a screen)
            self.end()
        self.err.write(f"[{message}]\n")
        self.err.flush()

    def audio_problems(self, counters: tuple[int, int], final: bool = False) -> None:
        """Report new underruns / dropped frames (rate-limited, unless `final`)."""
        now = time.monotonic()
        if counters == self._last or (not final and now - self._reported_at < STATUS_EVERY_SECONDS):
            return
        underruns, dropped = (c - p for c, p in zip(counters, self._last, strict=True))
        parts = [f"underrun x{underruns}: Moshi's audio came late"] if underruns else []
        parts += [f"lagging: dropped {dropped} input frames"] if dropped else []
        self.status("; ".join(parts))
        self._last, self._reported_at = counters, now

    def end(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open, self._speaker = False, None


class Recorder:
    """Both voices, for --save: stereo, the user left and Moshi right."""

    def __init__(self) -> None:
        self.user: list[np.ndarray] = []
        self.moshi: list[np.ndarray] = []

    def save(self, path: Path) -> None:
        user = np.concatenate(self.user) if self.user else np.zeros(0, dtype=np.float32)
        moshi = np.concatenate(self.moshi) if self.moshi else np.zeros(0, dtype=np.float32)
        stereo = np.zeros((max(len(user), len(moshi)), 2), dtype=np.float32)
        stereo[: len(user), 0], stereo[: len(moshi), 1] = user, moshi
        write_wav(path, stereo)
