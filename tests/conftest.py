import logging
import signal

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.support.fixtures import SPEECH

# Started where Ctrl-C is ignored (a background job of a non-interactive shell), the suite would
# not see the SIGINT some tests send (to themselves, or to a `moshi` child, which inherits the
# ignoring): give it Python's usual handler, so that children start with the default too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """Commands run in-process (`moshi serve` configures the log lines) leave the logging
    setup as they found it, for the tests that come after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a test module on one torch thread (`pytestmark = pytest.mark.usefixtures(...)`): the
    tiny models' ops are too small to gain from more, and two OpenMP threads collapse (10 ms
    steps become 500 ms) when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """6.9 s of English speech (espeak-ng), 24 kHz mono float32 [T]."""
    pcm, sr = sf.read(SPEECH, dtype="float32")
    assert sr == 24000 and pcm.ndim == 1
    return pcm


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)
