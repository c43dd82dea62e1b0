import pytest

from moshi.codec import Mimi, load_mimi
from tests.support.fixtures import MIMI_TINY, fixture_io


@pytest.fixture(scope="session")
def tiny_io():
    return fixture_io("mimi_tiny")


@pytest.fixture
def tiny_mimi() -> Mimi:
    return load_mimi(MIMI_TINY / "weights.safetensors", MIMI_TINY / "config.json", num_codebooks=8)
