"""Reading a corpus manifest (`{"path", "duration"}` per line, an `x.json` of alignments
beside each wav) and scoring the recogniser on it."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import read_audio
from .recogniser import Recogniser
from .wer import Errors, word_errors


@dataclass(frozen=True)
class Entry:
    wav: Path
    duration: float
    meta: dict  # the x.json beside the wav: "alignments", "voice", "text" or "exchanges"

    @property
    def text(self) -> str:
        return " ".join(w for w, _, _ in self.meta["alignments"])


def read_manifest(path: str | Path, limit: int | None = None) -> Iterator[Entry]:
    """The manifest's entries in order (the first `limit` ones)."""
    path = Path(path)
    with path.open() as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                return
            row = json.loads(line)
            wav = path.parent / row["path"]
            yield Entry(wav, float(row["duration"]), json.loads(wav.with_suffix(".json").read_text()))


def recogniser_wer(
    recogniser: Recogniser,
    manifest: str | Path,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    limit: int | None = None,
) -> dict:
    """Word error rate of the recogniser on a mono manifest's files (each first passed through
    `transform`, [T] -> [T'], e.g. a codec's round trip), and the median distance between the
    recognised and true word starts where the transcript is right."""
    total = Errors()
    start_errors: list[float] = []
    n = 0
    for entry in read_manifest(manifest, limit):
        pcm = read_audio(entry.wav)
        heard = recogniser.recognise(transform(pcm) if transform else pcm)
        total += word_errors(entry.text, [w.word for w in heard])
        truth = entry.meta["alignments"]
        if [w.word for w in heard] == [w for w, _, _ in truth]:
            start_errors += [abs(w.start - t[1][0]) for w, t in zip(heard, truth, strict=True)]
        n += 1
    return {
        "manifest": str(manifest),
        "files": n,
        "words": total.reference_words,
        "wer": round(total.rate, 4),
        "start_error_median_ms": round(1000 * statistics.median(start_errors), 1) if start_errors else None,
    }
