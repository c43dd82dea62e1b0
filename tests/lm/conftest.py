import pytest

from moshi.lm import load_lm
from tests.support.fixtures import MOSHI_TINY, STT_TINY, fixture_io


@pytest.fixture(scope="session")
def moshi_io():
    return fixture_io("moshi_lm_tiny")


@pytest.fixture(scope="session")
def stt_io():
    return fixture_io("stt_lm_tiny")


@pytest.fixture(scope="session")
def moshi_lm():
    return load_lm(MOSHI_TINY / "weights.safetensors", MOSHI_TINY / "config.json")


@pytest.fixture(scope="session")
def stt_lm():
    return load_lm(STT_TINY / "weights.safetensors", STT_TINY / "config.json")
