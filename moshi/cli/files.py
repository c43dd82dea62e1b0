"""Input and output files of the offline jobs, checked before any work starts, so that a bad
input or an existing output stops the program before anything is written; and the
progress bar (on a terminal only)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import FRAME_RATE, SAMPLE_RATE, AudioFileError, read_audio
from .common import UserError

# Seconds of audio done and in all, rounded (unit_scale makes them floats: 315.84000000000003).
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"


@dataclass(frozen=True)
class Input:
    path: Path
    pcm: np.ndarray  # [T] float32, 24 kHz mono

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def seconds(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


def read_inputs(paths: list[str]) -> list[Input]:
    """Every input as 24 kHz mono (any format, rate, channels), or a UserError for the first
    one that cannot be used."""
    inputs = []
    for p in paths:
        try:
            inputs.append(Input(Path(p), read_audio(p)))
        except AudioFileError as e:
            raise UserError(str(e)) from e
    return inputs


def unique_names(inputs: list[Input]) -> list[str]:
    """Output base names (the inputs' stems), refusing two inputs that would write the same."""
    seen: dict[str, Path] = {}
    for x in inputs:
        if x.name in seen:
            raise UserError(
                f"{seen[x.name]} and {x.path} would write the same outputs ({x.name}.*): rename one"
            )
        seen[x.name] = x.path
    return list(seen)


def check_outputs(paths: list[Path], force: bool) -> None:
    """Refuse outputs that are directories, or that exist without --force; create the
    folders they go in (or refuse, before any work)."""
    for p in paths:
        if p.is_dir():
            raise UserError(f"the output {p} is a directory")
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} exists{more}: use --force to overwrite")
    for p in paths:
        make_folder(p.parent)


def check_output_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UserError(f"the output folder {path} is a file")
    make_folder(path)


def make_folder(path: Path) -> None:
    """Create a writable folder (and its parents) or refuse in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"cannot write in the folder {path}")


def progress(total_frames: int, desc: str) -> tqdm:
    """A bar counting seconds of audio, drawn only when stderr is a terminal."""
    return tqdm(
        total=total_frames,
        desc=desc,
        unit="s",
        unit_scale=1 / FRAME_RATE,
        bar_format=BAR_FORMAT,
        disable=not sys.stderr.isatty(),
        leave=False,
        dynamic_ncols=True,
    )
