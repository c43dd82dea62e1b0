import pytest

from moshi.lm import load_lm
from moshi.lm.text import TextTokenizer
from moshi.tts import TTS
from tests.helpers import FIXTURES, fixture_meta

TTS_TINY = FIXTURES / "tts_lm_tiny"  # CFG distilled into a `cfg` condition
TTS_CFG_TINY = FIXTURES / "tts_cfg_lm_tiny"  # real CFG (doubled batch)
TTS_16B_TINY = FIXTURES / "tts_16b_lm_tiny"  # the released 1.6B's features: second text stream...
TOKENIZER = FIXTURES / "tiny_spm_100.model"


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


def make_tts(lm, **options):
    """A TTS over a tiny fixture model, with the fixtures' settings (greedy by default)."""
    meta = fixture_meta("tts_lm_tiny")
    settings = dict(
        delay_steps=meta["delay_steps"],
        temp=0.0,
        initial_padding=meta["initial_padding"],
        max_padding=meta["max_padding"],
        final_padding=meta["final_padding"],
        padding_between=meta["padding_between"],
        voice_suffix=".tiny0000@1.safetensors",
    )
    return TTS(lm, TOKENIZER, **(settings | options))


@pytest.fixture
def tts(tts_lm):
    return make_tts(tts_lm)
