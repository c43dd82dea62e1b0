import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """The speech-to-text tests run the tiny models on one thread (see tests/conftest.py)."""
