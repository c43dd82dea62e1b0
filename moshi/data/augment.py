"""Augmentation of a user's utterance, so that the models do not learn one voice's quirks:
speed (tempo and pitch together, by resampling), pitch alone and room reverb (sox), level,
and background noise. Moshi's persona voice is never augmented.

Only speed moves word times (they divide by it); the others keep the length."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE, resample


@dataclass(frozen=True)
class Augment:
    speed: float = 1.0  # > 1: faster and higher; word times / speed
    pitch_cents: int = 0  # sox pitch (length kept)
    reverb: int = 0  # sox reverberance 0..100 (0: none)
    gain_db: float = 0.0
    snr_db: float | None = None  # white noise this far below the speech's power (None: none)

    @staticmethod
    def draw(rng: random.Random) -> Augment:
        return Augment(
            speed=round(rng.uniform(0.9, 1.12), 2),  # 24 kHz · speed stays an integer rate
            pitch_cents=rng.choice([0, 0, rng.randint(-250, 250)]),
            reverb=rng.choice([0, 0, rng.randint(20, 70)]),
            gain_db=rng.uniform(-12.0, 0.0),
            snr_db=rng.choice([None, rng.uniform(15.0, 40.0)]),
        )


def augment(pcm: np.ndarray, aug: Augment) -> np.ndarray:
    """[T] float32 at 24 kHz -> [round(T / speed)] float32: speed, pitch, reverb and level
    (noise goes over the whole file: `add_noise`)."""
    assert pcm.ndim == 1, f"expected [T], got {tuple(pcm.shape)}"
    out = resample(pcm, round(SAMPLE_RATE * aug.speed), SAMPLE_RATE) if aug.speed != 1.0 else pcm
    n = len(out)
    effects = ([f"pitch {aug.pitch_cents}"] if aug.pitch_cents else []) + (
        [f"reverb {aug.reverb}"] if aug.reverb else []
    )
    if effects:
        out = _sox(out, " ".join(effects))[:n]
        out = np.pad(out, (0, n - len(out)))
    return np.clip(out * np.float32(10 ** (aug.gain_db / 20)), -1.0, 1.0).astype(np.float32)


def add_noise(pcm: np.ndarray, speech: np.ndarray, aug: Augment, rng: random.Random) -> np.ndarray:
    """[T] -> [T]: white noise over the whole file (pauses too), `aug.snr_db` below the power
    of `speech` (the speech alone, [T'])."""
    if aug.snr_db is None:
        return pcm
    power = float(np.mean(speech**2)) + 1e-12
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(len(pcm)).astype(np.float32)
    return np.clip(pcm + noise * np.float32(np.sqrt(power / 10 ** (aug.snr_db / 10))), -1.0, 1.0)


def _sox(pcm: np.ndarray, effects: str) -> np.ndarray:
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed (./install.sh installs it as root)")
    raw = ["-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1"]
    proc = subprocess.run(
        ["sox", *raw, "-", *raw, "-", *effects.split()],
        input=pcm.astype(np.float32).tobytes(),
        capture_output=True,
        check=True,
    )
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()
