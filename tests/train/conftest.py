"""Tiny models and data folders in moshi-finetune's layout (wav + json beside it, a .jsonl);
synthetic code datasets and configs for the trainer tests."""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moshi.codec import Mimi, load_mimi
from moshi.lm.config import KyutaiConfig
from moshi.train.alignments import AlignedWord, write_alignments
from tests.support.fixtures import FIXTURES, STT_CONFIG, config_of

SR = 24000


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """The training tests run the tiny models on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="package")
def mimi() -> Mimi:
    d = FIXTURES / "mimi_tiny"
    return load_mimi(d / "weights.safetensors", d / "config.json", num_codebooks=8)


def kyutai_config(name: str, **extra) -> KyutaiConfig:
    return KyutaiConfig.parse(config_of(FIXTURES / name, **extra))


@pytest.fixture(scope="package")
def configs() -> dict[str, KyutaiConfig]:
    """The tiny models' configs, by task."""
    return {
        "dialogue": kyutai_config("moshi_lm_tiny"),
        # text_card 50 -> 100: the tokenizer's size (tiny_spm_100.model)
        "stt": kyutai_config("stt_lm_tiny", stt_config=STT_CONFIG, text_card=100),
        "tts": kyutai_config("tts_lm_tiny"),  # tts_config.audio_delay 0.32 s
    }


def tone(seconds: float, channels: int, rate: int = SR, seed: int = 0) -> np.ndarray:
    """[T, C] float32: a different noisy tone in each channel."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    pitches = 220 + 110 * np.arange(channels)[:, None]  # [C, 1]
    pcm = np.sin(2 * np.pi * pitches * t) + 0.2 * rng.standard_normal((channels, t.size))
    return (0.3 * pcm.T).astype(np.float32)


HI = (("hi", 0.1, 0.3),)  # default words: Moshi says "hi" at 0.1 s
Writer = Callable[..., Path]


@pytest.fixture
def data(tmp_path) -> Writer:
    """Write `name.wav` (and `name.json` unless words is None) under tmp_path/data; returns
    the wav's path. Add it to a manifest with `manifest(tmp_path, paths)`."""

    def write(
        name: str,
        seconds: float = 1.0,
        channels: int = 2,
        words: Sequence[tuple] | None = HI,
        rate: int = SR,
        seed: int = 0,
    ) -> Path:
        folder = tmp_path / "data"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.wav"
        sf.write(path, tone(seconds, channels, rate, seed), rate)
        if words is not None:
            write_alignments(path.with_suffix(".json"), [AlignedWord(*w) for w in words])
        return path

    return write
