import pytest

from moshi.codec import Mimi, load_mimi
from tests.helpers import FIXTURES, fixture_io

TINY = FIXTURES / "mimi_tiny"


@pytest.fixture(scope="session")
def tiny_io():
    return fixture_io("mimi_tiny")


@pytest.fixture
def tiny_mimi() -> Mimi:
    return load_mimi(TINY / "weights.safetensors", TINY / "config.json", num_codebooks=8)
