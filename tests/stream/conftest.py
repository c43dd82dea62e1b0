import numpy as np
import pytest
import soundfile as sf

from moshi.codec import load_mimi
from moshi.lm import load_lm
from moshi.lm.text import TextTokenizer
from tests.helpers import FIXTURES


@pytest.fixture(scope="session")
def tiny_parts():
    """The tiny dialogue models: LM, codec, 100-piece tokenizer (all fixtures)."""
    lm = load_lm(
        FIXTURES / "moshi_lm_tiny" / "weights.safetensors", FIXTURES / "moshi_lm_tiny" / "config.json"
    )
    mimi = load_mimi(FIXTURES / "mimi_tiny" / "weights.safetensors", FIXTURES / "mimi_tiny" / "config.json")
    return mimi, lm, TextTokenizer(FIXTURES / "tiny_spm_100.model")


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """6.9 s of English speech at 24 kHz, float32."""
    pcm, sr = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    assert sr == 24000 and pcm.ndim == 1
    return pcm
