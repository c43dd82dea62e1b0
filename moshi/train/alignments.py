"""moshi-finetune's data format: a `.jsonl` manifest of audio files, and beside each file
`x.wav` its word alignments `x.json`.

    manifest line:  {"path": "relative/x.wav", "duration": 12.3}   (relative to the manifest's folder)
    x.json:         {"alignments": [["hello", [0.10, 0.42], "SPEAKER_MAIN"], ...]}

Ours: a line whose path is the alignments file itself, `{"path": "relative/x.json",
"duration": 12.3}`, is a text-only item (words and their times, no audio: `moshi data build
--text-only`); a dialogue model learns its text stream alone from it. And a line with
`"channel": 0 or 1` names one channel of a stereo dialogue as a mono item, with that
channel's speaker's words (0, the left: Moshi's, SPEAKER_MAIN; 1, the right: the user's,
every other label): speech-to-text learns from the users' channels of dialogues (long inputs,
pauses, many voices) and text-to-speech from Moshi's, with no audio written twice.

Times are seconds from the start of the file. In dialogue data (stereo: left = Moshi, right
= the user) Moshi's words are labelled `SPEAKER_MAIN`; any other label is another speaker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAIN_SPEAKER = "SPEAKER_MAIN"
OTHER_SPEAKER = "SPEAKER_OTHER"  # what `annotate` writes for the right channel
CHANNELS = (0, 1)  # a dialogue's channels: 0, the left, Moshi (SPEAKER_MAIN); 1, the right, the user


class DataError(ValueError):
    """A data file that cannot be used: the message names the file and what is wrong;
    `reason` is a short category (the dataset counts skipped files by it)."""

    def __init__(self, message: str, reason: str = "bad data"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """One manifest line: an audio file (absolute path) and its duration in seconds; or an
    alignments file alone (`text_only`); `channel`: one channel of a stereo file (0 or 1)."""

    path: Path
    duration: float
    channel: int | None = None

    def __post_init__(self) -> None:
        if self.channel is not None and (type(self.channel) is not int or self.channel not in CHANNELS):
            raise ValueError(f"channel must be 0 (Moshi's, left) or 1 (the user's), got {self.channel!r}")

    @property
    def alignments_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def text_only(self) -> bool:
        return self.path.suffix == ".json"


@dataclass(frozen=True)
class AlignedWord:
    text: str
    start: float  # seconds
    end: float
    speaker: str = MAIN_SPEAKER


def read_manifest(path: str | Path) -> list[Entry]:
    """The entries of a `.jsonl` manifest, paths made absolute against the manifest's folder.
    A malformed line raises DataError naming the manifest and the line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(f"cannot read the manifest {path}: {e.strerror or e}") from e
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            expected = '{"path": "x.wav", "duration": seconds}'
            raise DataError(f"{where}: expected {expected}, got {line.strip()[:80]}")
        duration = item.get("duration", math.nan)
        if not isinstance(duration, (int, float)) or isinstance(duration, bool):
            raise DataError(f"{where}: duration must be a number of seconds, got {duration!r}")
        try:
            entries.append(
                Entry((path.parent / item["path"]).absolute(), float(duration), item.get("channel"))
            )
        except ValueError as e:  # (a bad channel)
            raise DataError(f"{where}: {e}") from e
    return entries


def write_manifest(path: str | Path, entries: Sequence[Entry]) -> None:
    """Write entries as a manifest, with paths relative to its folder where they can be."""
    folder = Path(path).absolute().parent
    lines = []
    for e in entries:
        rel = e.path.relative_to(folder) if e.path.is_relative_to(folder) else e.path
        line: dict[str, Any] = {"path": str(rel), "duration": e.duration}
        if e.channel is not None:
            line["channel"] = e.channel
        lines.append(json.dumps(line))
    Path(path).write_text("".join(line + "\n" for line in lines))


def read_alignments(path: str | Path) -> list[AlignedWord]:
    """The words of an alignments file. Raises DataError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing alignments file", "missing alignments")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable alignments ({e})", "bad alignments") from e
    return parse_alignments(data, str(path))


def parse_alignments(data: Any, source: str) -> list[AlignedWord]:
    """`{"alignments": [[word, [start, end], speaker], ...]}` -> words (speaker optional)."""
    items = data.get("alignments") if isinstance(data, dict) else None
    if not isinstance(items, list):
        expected = '{"alignments": [[word, [start, end], speaker], ...]}'
        raise DataError(f"{source}: expected {expected}", "bad alignments")
    words = []
    for i, item in enumerate(items):
        try:
            text, (start, end), *rest = item
            speaker = rest[0] if rest else MAIN_SPEAKER
            ok = isinstance(text, str) and isinstance(speaker, str) and len(rest) <= 1
            word = AlignedWord(text, float(start), float(end), speaker)
        except (TypeError, ValueError):
            ok = False
        if not ok or not (math.isfinite(word.start) and math.isfinite(word.end)):
            message = f"{source}: alignment {i} is not [word, [start, end], speaker]: {item!r}"
            raise DataError(message[:200], "bad alignments")
        words.append(word)
    return words


def write_alignments(path: str | Path, words: Sequence[AlignedWord]) -> None:
    items = [[w.text, [round(w.start, 3), round(w.end, 3)], w.speaker] for w in words]
    Path(path).write_text(json.dumps({"alignments": items}, ensure_ascii=False) + "\n")


def channel_words(
    words: Sequence[AlignedWord], channel: int, main_speaker: str = MAIN_SPEAKER
) -> list[AlignedWord]:
    """The words said on one channel of a dialogue: the main speaker's on 0, the others' on 1."""
    return [w for w in words if (w.speaker == main_speaker) == (channel == 0)]


def check_within(words: Sequence[AlignedWord], duration: float, source: str, slack: float) -> None:
    """DataError naming the first word that lies outside [0, duration + slack] seconds."""
    for w in words:
        if w.start < 0 or w.end > duration + slack:
            raise DataError(
                f"{source}: word {w.text!r} at [{w.start:g}, {w.end:g}] s lies outside the audio "
                f"(0 to {duration:.2f} s)",
                "word outside the audio",
            )
