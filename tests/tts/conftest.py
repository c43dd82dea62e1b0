import pytest

from moshi.lm import load_lm
from moshi.lm.text import TextTokenizer
from tests.support.fixtures import TOKENIZER, TTS_16B_TINY, TTS_CFG_TINY, TTS_TINY
from tests.support.tts import make_tts


@pytest.fixture(scope="session")
def tokenizer():
    return TextTokenizer(TOKENIZER)


@pytest.fixture(scope="session")
def tts_lm():
    return load_lm(TTS_TINY / "weights.safetensors", TTS_TINY / "config.json")


@pytest.fixture(scope="session")
def tts_cfg_lm():
    return load_lm(TTS_CFG_TINY / "weights.safetensors", TTS_CFG_TINY / "config.json")


@pytest.fixture(scope="session")
def tts_16b_lm():
    return load_lm(TTS_16B_TINY / "weights.safetensors", TTS_16B_TINY / "config.json")


@pytest.fixture
def tts(tts_lm):
    return make_tts(tts_lm)
