"""Words spoken by Debian's speech synthesisers (espeak-ng, flite, festival), as 24 kHz mono
float32, one word at a time.

Word times are exact because each word is synthesised alone, trimmed of its silence, and
utterances are joined from these pieces with drawn pauses (`moshi.data.utterance`). Reading
the synthesisers' own timing output would keep the sentence prosody, but each synthesiser
reports it differently (espeak-ng only through its C API's events, flite not at all from the
command line), and word-by-word rendering also lets every voice speak each vocabulary word
once, so a corpus build is mostly joining and augmenting cached words. The cost: the speech
is in citation form (each word stressed as if alone), which the augmentation and the many
voices do not hide; the models learn word timing from real gaps rather than coarticulation.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, resample

ENGINES = ("espeak", "flite", "festival")
_COMMAND = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
_TRIM_DB = 40.0  # a word's edges: where its 10 ms energy is this far below its loudest 10 ms
_MARGIN_S = 0.01  # kept either side of a trimmed word
_FADE_S = 0.005  # a trimmed word fades in and out over this (no click at its cut edges)


@dataclass(frozen=True)
class Voice:
    """One synthesiser voice: `engine` in ENGINES, `name` as that engine calls it; espeak-ng
    also takes `speed` (words per minute) and `pitch` (0..99), 0 keeping its default."""

    engine: str
    name: str
    speed: int = 0
    pitch: int = 0

    @property
    def id(self) -> str:
        """A file-name-safe name, unique per voice: "espeak-en-us+f3-s160-p40"."""
        extra = (f"-s{self.speed}" if self.speed else "") + (f"-p{self.pitch}" if self.pitch else "")
        return f"{self.engine}-{self.name}{extra}".replace("/", "_")


def _espeak(lang_variants: str, speed: int, pitch: int) -> list[Voice]:
    langs, variants = lang_variants.split(":")
    out = []
    for i, (lang, var) in enumerate(zip(langs.split() * 8, variants.split(), strict=False)):
        out.append(Voice("espeak", f"{lang}+{var}", speed + 12 * (i % 3), pitch + 9 * (i % 4)))
    return out


# The users' voices (many) and Moshi's (one: its persona). Held-out voices speak only in the
# held-out set.
USER_VOICES: tuple[Voice, ...] = (
    *_espeak(
        "en-us en-gb en-gb-scotland en-029 en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-us:"
        "f1 m1 f2 m2 f3 m3 f4 m4 f5 m5 m6 m7 klatt klatt2 klatt3 Andy Annie Mike linda david",
        150,
        35,
    ),
    Voice("flite", "kal"),
    Voice("flite", "kal16"),
    Voice("flite", "awb"),
    Voice("flite", "rms"),
    # More training voices: espeak-ng's other human-sounding variants, each in one accent at
    # its own speed and pitch (none is a held-out voice's variant, so held-out voices stay
    # unheard). They come last: the held-out set does not change with them.
    *_espeak(
        "en-us en-gb en-gb-scotland en-029 en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-us-nyc:"
        "Alex Alicia Andrea AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco "
        "Mario Michael Nguyen RicishayMax Storm adam anika antonio aunty belinda benjamin boris "
        "caleb ed edward edward2 grandma grandpa gustave iven iven2 iven3 iven4 john kaukovalta "
        "klatt4 klatt5 klatt6 m8 marcelo max michel miguel norbert pablo paul pedro quincy rob "
        "robert sandro shelby steph steph2 steph3 travis victor zac",
        138,
        28,
    ),
    # Festival's two English diphone voices (Debian's festvox-kallpc16k, festvox-kdlpc16k):
    # with flite's three, the training voices that are not espeak-ng's.
    Voice("festival", "kal_diphone"),
    Voice("festival", "ked_diphone"),
)  # fmt: skip  (flite's awb_time is left out: it only knows clock times)
HELDOUT_VOICES: frozenset[str] = frozenset(
    {
        "espeak-en-gb-scotland+f2-s174-p53",
        "espeak-en-gb+m5-s150-p44",
        "espeak-en-us+Annie-s162-p35",
        "espeak-en-029+david-s162-p62",
        "flite-rms",
    }
)
MOSHI_VOICE = Voice("festival", "cmu_us_slt_arctic_hts")
FAST_MOSHI_VOICE = Voice("flite", "slt")  # a persona that starts in milliseconds (tests)


def voices_of(heldout: bool) -> list[Voice]:
    return [v for v in USER_VOICES if (v.id in HELDOUT_VOICES) == heldout]


def available(engine: str) -> bool:
    if engine not in ENGINES:
        raise ValueError(f"expected an engine among {ENGINES}, got {engine!r}")
    return shutil.which(_COMMAND[engine]) is not None


_FESTIVAL_VOICES = Path("/usr/share/festival/voices")


def installed(voice: Voice) -> bool:
    """Whether `voice` can speak here: its engine, and for festival its voice's folder."""
    if not available(voice.engine):
        return False
    return voice.engine != "festival" or any(_FESTIVAL_VOICES.glob(f"*/{voice.name}"))


def synth_words(voice: Voice, words: list[str]) -> dict[str, np.ndarray]:
    """Each word spoken alone, trimmed: {word: [T] float32 at 24 kHz}."""
    if not available(voice.engine):
        raise RuntimeError(f"{_COMMAND[voice.engine]} is not installed (./install.sh installs it as root)")
    with tempfile.TemporaryDirectory(prefix="moshi-synth-") as tmp:
        paths = [Path(tmp) / f"{i}.wav" for i in range(len(words))]
        if voice.engine == "festival":
            _festival(voice, words, paths)
        else:
            for word, path in zip(words, paths, strict=True):
                subprocess.run(_command(voice, word, path), check=True, capture_output=True)
        return {w: trim(*_read(p)) for w, p in zip(words, paths, strict=True)}


def _command(voice: Voice, word: str, path: Path) -> list[str]:
    if voice.engine == "flite":
        return ["flite", "-voice", voice.name, "-t", word, "-o", str(path)]
    cmd = ["espeak-ng", "-v", voice.name, "-w", str(path)]
    cmd += ["-s", str(voice.speed)] if voice.speed else []
    cmd += ["-p", str(voice.pitch)] if voice.pitch else []
    return [*cmd, word]


def _festival(voice: Voice, words: list[str], paths: list[Path]) -> None:
    """One festival process for all the words (it takes seconds to start)."""
    script = [f"(voice_{voice.name})"]
    for word, path in zip(words, paths, strict=True):
        script.append(f'(utt.save.wave (SynthText "{word}") "{path}" \'riff)')
    subprocess.run(["festival", "--pipe"], input="\n".join(script).encode(), check=True, capture_output=True)


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    pcm, rate = sf.read(io.BytesIO(path.read_bytes()), dtype="float32", always_2d=True)
    return resample(pcm.mean(axis=1), rate, SAMPLE_RATE), SAMPLE_RATE


def trim(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """[T] -> [T'] without the leading and trailing silence (`_TRIM_DB` below the peak),
    keeping `_MARGIN_S` either side, faded in and out over `_FADE_S`."""
    hop = rate // 100
    n = len(pcm) // hop
    if n == 0:
        return pcm.astype(np.float32)
    energy = (pcm[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-_TRIM_DB / 10))
    margin = int(_MARGIN_S * rate)
    start = max(0, loud[0] * hop - margin)
    end = min(len(pcm), (loud[-1] + 1) * hop + margin)
    out = np.array(pcm[start:end], dtype=np.float32)
    fade = min(len(out) // 2, int(_FADE_S * rate))
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
    out[:fade] *= ramp
    out[len(out) - fade :] *= ramp[::-1]
    return out
