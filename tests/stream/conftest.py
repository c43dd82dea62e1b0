import pytest

from moshi.codec import load_mimi
from moshi.lm import load_lm
from moshi.lm.text import TextTokenizer
from tests.support.fixtures import FIXTURES


@pytest.fixture(scope="session")
def tiny_parts():
    """The tiny dialogue models: LM, codec, 100-piece tokenizer (all fixtures)."""
    lm = load_lm(
        FIXTURES / "moshi_lm_tiny" / "weights.safetensors", FIXTURES / "moshi_lm_tiny" / "config.json"
    )
    mimi = load_mimi(FIXTURES / "mimi_tiny" / "weights.safetensors", FIXTURES / "mimi_tiny" / "config.json")
    return mimi, lm, TextTokenizer(FIXTURES / "tiny_spm_100.model")
