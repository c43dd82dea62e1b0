"""Tiny model folders laid out as Kyutai's repos (config.json naming the files beside it),
short speech files, and a way to run `moshi ...` in-process and see what it printed."""

from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from moshi.cli.main import main
from tests.support.fixtures import MOSHI_TINY, STT_CONFIG, STT_TINY, tiny_model_dir
from tests.support.pulse import Pulse

SR = 24000


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """Every command line test runs the tiny models on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def dialogue_model(tmp_path_factory) -> list[str]:
    """Flags selecting the tiny dialogue model (offline, CPU)."""
    config = tiny_model_dir(tmp_path_factory.mktemp("models") / "moshi", MOSHI_TINY, model_type="moshi")
    return ["--config", str(config), "--device", "cpu"]


@pytest.fixture(scope="session")
def stt_model(tmp_path_factory) -> list[str]:
    """Flags selecting the tiny speech-to-text model (offline, CPU)."""
    config = tiny_model_dir(
        tmp_path_factory.mktemp("models") / "stt", STT_TINY, model_type="stt", stt_config=STT_CONFIG
    )
    return ["--config", str(config), "--device", "cpu"]


@pytest.fixture
def wav(tmp_path, speech):
    """Write `seconds` of the speech (from `start`) as a file; returns its path."""

    def make(name: str = "talk.wav", seconds: float = 0.6, start: float = 0.5) -> Path:
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        sf.write(path, speech[int(start * SR) : int((start + seconds) * SR)], SR)
        return path

    return make


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def moshi(capsys):
    """Run `moshi ARGS...` in-process: its exit code, stdout and stderr."""

    def run(*args: object) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def pulse(tmp_path):
    """A PulseAudio daemon of the test's own (tests/support/pulse.py); mark the test
    `needs_pulseaudio`."""
    p = Pulse(tmp_path / "pulse")
    yield p
    p.stop()
